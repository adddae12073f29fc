using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Translation;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// One engine's view of the device MMU: the shared <see cref="PageTableRoots"/>, a <see cref="PageTableWalker"/> over
/// the device-visible memory, and the engine's own <see cref="DeviceTlb"/> with its in-flight uses. An engine wraps
/// each unit of work (a DMA descriptor, a kernel's page span) in <see cref="BeginUse"/> / <see cref="EndUse"/> and
/// translates page by page in between; TLB invalidations complete only after the uses that translated a covered
/// page have ended.
/// </summary>
/// <remarks>
/// Thread-safe: engine threads translate while driver threads invalidate. A use belongs to one thread at a time.
/// Bad table contents are answered with a failed <see cref="TranslationResult"/>; misuse of the host-side API
/// (an untracked or ended use, an empty access) throws.
/// </remarks>
public sealed class DeviceMmu : ITranslator
{
    private readonly PageTableRoots _roots;
    private readonly PageTableWalker _walker;
    private readonly DeviceTlb _tlb;
    private readonly InFlightUses _uses;
    private readonly InFlightUses.Slot[] _slots;
    private readonly DeviceTlb.HitView _hitPath;       // the TLB's, kept here so that the inlined hit reads it from here

    /// <summary>
    /// Creates an engine MMU over <paramref name="roots"/> (shared by the device's engines) whose tables and pages live
    /// in <paramref name="system"/> RAM and, if the device has it, <paramref name="vram"/>.
    /// </summary>
    public DeviceMmu(Scheduler scheduler, PageTableRoots roots, IMemoryPort system, IMemoryPort? vram = null,
        DeviceMmuOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(roots);
        options ??= DeviceMmuOptions.Default;
        _roots = roots;
        _walker = new PageTableWalker(system, vram, scheduler, options.WalkLevelNs);
        _tlb = new DeviceTlb(scheduler, options.Name, options.TlbSets, options.TlbWays, options.UseSlots,
            options.WalkCacheEntries);
        _uses = _tlb.Uses;
        _slots = _uses.Slots;
        _hitPath = _tlb.HitPath;
    }

    /// <summary>The page-table base of each address-space id (shared with the device's other engines).</summary>
    public PageTableRoots Roots => _roots;

    /// <summary>The walker used on TLB misses.</summary>
    public PageTableWalker Walker => _walker;

    /// <summary>This engine's TLB: invalidate through it.</summary>
    public DeviceTlb Tlb => _tlb;

    /// <summary>The TLB's counters.</summary>
    public TlbStats Stats => _tlb.Stats;

    /// <summary>
    /// Starts a unit of work. Never allocates. May sleep, but only when all <see cref="DeviceMmuOptions.UseSlots"/>
    /// uses are in flight: it then waits for one to end.
    /// </summary>
    public TranslationUse BeginUse() => new(_uses.Begin());

    /// <summary>
    /// Translates the 4 KiB page containing <paramref name="address"/> of <paramref name="asid"/> for
    /// <paramref name="access"/> under <paramref name="use"/>. A TLB hit takes no lock and never sleeps; a miss walks
    /// the tables, which charges virtual time and may yield. The result spans at most to the end of the 4 KiB page.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TranslationResult Translate(TranslationUse use, ushort asid, ulong address, Access access)
    {
        ulong need = Rights.Required(access);
        ulong vpn = address >> DevicePageTable.PageShift;
        // The hit path: the use has already published (and fenced) this page, and the TLB holds it. An ended use and
        // slot 0 (untracked) have no pages recorded, so they take the other path, which throws; so does an address
        // past the limit, which it fails.
        var slots = _slots;
        if ((uint)use.Slot < (uint)slots.Length && address >> DevicePageTable.VirtualAddressBits == 0)
        {
            // In bounds: checked just above.
            ref var slot = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(slots), use.Slot);
            ulong key = InFlightUses.Key(asid, vpn);
            if (InFlightUses.Covers(ref slot, key) && _hitPath.Find(key, vpn, out ulong pte) > 0)
            {
                slot.Hits++;
                return Result(pte, address, need);
            }
        }
        return TranslateTouching(use, asid, address, access, need);
    }

    /// <summary>
    /// Translates the page containing <paramref name="address"/> as <see cref="Translate"/> does, then goes on over the
    /// following pages while each is one that <paramref name="use"/> has already recorded (so an invalidation of it
    /// waits for the use), is a TLB hit with the rights <paramref name="access"/> needs, and lies in the same aperture
    /// right after the previous one; the result's length spans them all, stopping once it reaches
    /// <paramref name="maxLength"/>. Every page is still translated through the TLB and counted as a hit: what it
    /// saves a DMA engine is a call and a memory-port lookup per page. Never walks beyond the first page, never sleeps
    /// beyond what <see cref="Translate"/> may.
    /// </summary>
    public TranslationResult TranslateRun(TranslationUse use, ushort asid, ulong address, Access access, ulong maxLength)
    {
        var first = Translate(use, asid, address, access);
        if (!first.IsOk || first.Length >= maxLength)
            return first;
        return ExtendRun(use, asid, address >> DevicePageTable.PageShift, Rights.Required(access), first, maxLength);
    }

    /// <summary>Ends a unit of work: invalidations waiting only on it complete. Never sleeps.</summary>
    public void EndUse(TranslationUse use) => _uses.End(use.Slot);

    /// <summary>
    /// Walks the tables for <paramref name="address"/> of <paramref name="asid"/> without consulting or filling the TLB
    /// and without a use: for fault records (which level, which entry) and for debugging. May yield.
    /// </summary>
    public WalkResult Probe(ushort asid, ulong address, Access access)
    {
        if (!_roots.TryGet(asid, out var root))
            return new WalkResult(TranslationStatus.OutOfRange, 0, DevicePte.Invalid, Aperture.System, 0, 0, default);
        return _walker.Walk(root, address, access);
    }

    /// <summary>
    /// What the tables say about <paramref name="address"/> of <paramref name="asid"/>, bypassing the TLB, charging no
    /// time and counting nothing (<see cref="PageTableWalker.Peek"/>): for debuggers and coherence checkers. Never yields.
    /// </summary>
    public WalkResult Inspect(ushort asid, ulong address)
    {
        if (!_roots.TryGet(asid, out var root))
            return new WalkResult(TranslationStatus.OutOfRange, 0, DevicePte.Invalid, Aperture.System, 0, 0, default);
        return _walker.Peek(root, address);
    }

    // The pages after a successful translation of vpn (so use is live) that continue it, as TranslateRun describes.
    private TranslationResult ExtendRun(TranslationUse use, ushort asid, ulong vpn, ulong need, TranslationResult first,
        ulong maxLength)
    {
        ref var slot = ref _slots[use.Slot];
        if (!InFlightUses.TryGetRecordedEnd(ref slot, asid, vpn, out ulong lastVpn))
            return first;
        ulong vramBit = first.Aperture == Aperture.Vram ? DevicePte.VramBit : 0;
        ulong next = first.Address + first.Length;
        ulong length = first.Length;
        long hits = 0;
        while (length < maxLength && vpn < lastVpn)
        {
            vpn++;
            if (_hitPath.Find(InFlightUses.Key(asid, vpn), vpn, out ulong pte) <= 0
                || (pte & need) != need
                || (pte & DevicePte.VramBit) != vramBit
                || (pte & DevicePte.AddressMask) != next)
                break;
            next += DevicePageTable.PageSize;
            length += DevicePageTable.PageSize;
            hits++;
        }
        slot.Hits += hits;
        return first with { Length = length };
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private TranslationResult TranslateTouching(TranslationUse use, ushort asid, ulong address, Access access, ulong need)
    {
        var status = _tlb.LookupUnderUse(use, asid, address, out ulong pte);
        if (status == TranslationStatus.Ok)
            return Result(pte, address, need);
        if (status != TranslationStatus.NotPresent)
            return TranslationResult.Fail(status);
        return Miss(asid, address >> DevicePageTable.PageShift, address, access, need);
    }

    private TranslationResult Miss(ushort asid, ulong vpn, ulong address, Access access, ulong need)
    {
        if (!_roots.TryGet(asid, out var root))
            return TranslationResult.Fail(TranslationStatus.OutOfRange);
        long sequence = _tlb.Sequence;
        var walk = Walk(root, asid, address, access, sequence);
        _tlb.CountWalk(faulted: !walk.IsOk);
        if (!walk.HasPage)
            return TranslationResult.Fail(walk.Status);
        // Cache the leaf even when this access lacks a right: the next access may not need it.
        _tlb.Fill(asid, vpn, walk.Page.Value, sequence);
        return Result(walk.Page.Value, address, need);
    }

    /// <summary>
    /// Walks from the level-1 table the page-walk cache holds for the address's 2 MiB region when it holds one under
    /// <paramref name="sequence"/> (read before the walk), else from the root, caching the level-1 table it reaches.
    /// May yield.
    /// </summary>
    /// <remarks>
    /// A cached table is used only while no invalidation has run since the walk that found it: a driver that changes or
    /// frees a table invalidates afterwards (docs/hardware.md), and this use was recorded before the lookup, so the
    /// invalidation also waits for a walk that passed the check just before it.
    /// </remarks>
    private WalkResult Walk(DevicePte root, ushort asid, ulong address, Access access, long sequence)
    {
        var cache = _tlb.WalkCache;
        ulong region = address >> DevicePageTable.LargePageShift;
        if (cache.TryLookup(asid, region, sequence, out var leafTable))
            return _walker.WalkLeafTable(leafTable, address, access);
        var walk = _walker.Walk(root, address, access, out leafTable);
        // A table found by a walk that an invalidation raced would never match; do not let it evict a good one.
        if (leafTable.IsValid && _tlb.Sequence == sequence)
            cache.Fill(asid, region, leafTable, sequence);
        return walk;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TranslationResult Result(ulong pte, ulong address, ulong need)
    {
        if ((pte & need) != need)
            return TranslationResult.Fail(TranslationStatus.Permission);
        ulong offset = address & (DevicePageTable.PageSize - 1);
        var aperture = (pte & DevicePte.VramBit) != 0 ? Aperture.Vram : Aperture.System;
        return new TranslationResult(TranslationStatus.Ok, aperture, (pte & DevicePte.AddressMask) | offset,
            DevicePageTable.PageSize - offset);
    }
}
