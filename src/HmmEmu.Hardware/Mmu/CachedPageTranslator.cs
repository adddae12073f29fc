using System.Runtime.CompilerServices;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Translation;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// A translation cache over any <see cref="IPageSource"/>: the same set-associative, id-tagged <see cref="DeviceTlb"/>
/// and in-flight use tracking as <see cref="DeviceMmu"/>, but the misses go to a device-defined table instead of the
/// 4-level page table. An RDMA NIC's per-MR MTT cache is one (the id is the MR index, the page the iova's page).
/// </summary>
/// <remarks>
/// The invalidation contract is <see cref="DeviceTlb"/>'s: invalidate through <see cref="Tlb"/>; the returned
/// <see cref="TlbInvalidation"/> completes only after every use that translated a covered page has ended. The cache
/// only ever holds valid leaves: an entry the source reports not present is never cached, so writing it valid in the
/// table is seen by the next miss without an invalidation. Thread-safe as <see cref="DeviceMmu"/> is.
/// </remarks>
public sealed class CachedPageTranslator : ITranslator
{
    private readonly IPageSource _source;
    private readonly DeviceTlb _tlb;
    private readonly InFlightUses _uses;

    /// <summary>
    /// Creates the cache: <paramref name="sets"/> × <paramref name="ways"/> entries and <paramref name="useSlots"/>
    /// in-flight uses (see <see cref="DeviceTlb"/>), filled from <paramref name="source"/>.
    /// </summary>
    public CachedPageTranslator(Scheduler scheduler, string name, IPageSource source, int sets = 64, int ways = 4,
        int useSlots = 64)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        _tlb = new DeviceTlb(scheduler, name, sets, ways, useSlots, walkCacheEntries: 0);
        _uses = _tlb.Uses;
    }

    /// <summary>The cache: invalidate through it.</summary>
    public DeviceTlb Tlb => _tlb;

    /// <summary>The cache's counters (a miss that found no valid entry counts as a faulted walk).</summary>
    public TlbStats Stats => _tlb.Stats;

    /// <inheritdoc cref="DeviceMmu.BeginUse" />
    public TranslationUse BeginUse() => new(_uses.Begin());

    /// <summary>
    /// Translates the 4 KiB page containing <paramref name="address"/> of <paramref name="asid"/> for
    /// <paramref name="access"/> under <paramref name="use"/>. A hit takes no lock and never sleeps; a miss asks the
    /// source, which may charge time. A leaf without the right answers <see cref="TranslationStatus.Permission"/> and is
    /// dropped from the cache, so that a driver may upgrade an entry in place (read-only to writable) and the retried
    /// access reads it again.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TranslationResult Translate(TranslationUse use, ushort asid, ulong address, Access access)
    {
        ulong need = Rights.Required(access);
        var status = _tlb.LookupUnderUse(use, asid, address, out ulong pte);
        if (status == TranslationStatus.Ok)
            return Result(pte, asid, address, need);
        if (status != TranslationStatus.NotPresent)
            return TranslationResult.Fail(status);
        return Miss(asid, address >> DevicePageTable.PageShift, address, need);
    }

    /// <inheritdoc cref="DeviceMmu.EndUse" />
    public void EndUse(TranslationUse use) => _uses.End(use.Slot);

    private TranslationResult Miss(ushort asid, ulong vpn, ulong address, ulong need)
    {
        long sequence = _tlb.Sequence;
        var status = _source.Lookup(asid, vpn, out var page);
        bool ok = status == TranslationStatus.Ok && page.IsValid;
        _tlb.CountWalk(faulted: !ok);
        if (!ok)
            return TranslationResult.Fail(status == TranslationStatus.Ok ? TranslationStatus.NotPresent : status);
        _tlb.Fill(asid, vpn, page.Value, sequence);
        return Result(page.Value, asid, address, need);
    }

    private TranslationResult Result(ulong pte, ushort asid, ulong address, ulong need)
    {
        if ((pte & need) != need)
        {
            // Not waited for: the entry is gone for the next lookup, and no translation was handed out.
            _tlb.InvalidatePage(asid, address);
            return TranslationResult.Fail(TranslationStatus.Permission);
        }
        ulong offset = address & (DevicePageTable.PageSize - 1);
        var aperture = (pte & DevicePte.VramBit) != 0 ? Aperture.Vram : Aperture.System;
        return new TranslationResult(TranslationStatus.Ok, aperture, (pte & DevicePte.AddressMask) | offset,
            DevicePageTable.PageSize - offset);
    }
}
