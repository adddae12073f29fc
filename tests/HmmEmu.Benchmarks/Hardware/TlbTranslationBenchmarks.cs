using BenchmarkDotNet.Attributes;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;

namespace HmmEmu.Benchmarks.Hardware;

/// <summary>
/// Goal (issue 4): a TLB-hit translation costs at most 2× indexing a flat array. One operation translates one
/// address; each invocation translates 64 pages (one per TLB set of the default 64 × 4 TLB) 16 times over, so every
/// lookup after the first pass hits. The baseline does the same job with a flat page table, as Ryujinx does: index a
/// <c>ulong[]</c> by page number, check the rights, compose the same <see cref="TranslationResult"/>.
/// </summary>
/// <remarks>
/// <see cref="TlbHit"/> holds one use for the whole run, so each lookup takes the fast path of the use's touch record:
/// the pure hit cost. <see cref="TlbHitFirstTouchPerUse"/> begins a use, translates each of the 64 pages once and ends
/// it, as the DMA engine does per descriptor: every page is a TLB hit but a first touch for the use (a record update
/// and a full fence, which an invalidation needs to find the use), and the use's begin and end are spread over the 64.
/// </remarks>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 8)]
public class TlbTranslationBenchmarks
{
    private const int Pages = 64;
    private const int Passes = 16;
    private const ulong Va = 0x7_0000_0000;

    private BenchMachine _m = null!;
    private DeviceMmu _mmu = null!;
    private TranslationUse _heldUse;
    private ulong[] _flat = null!;

    [GlobalSetup]
    public void Setup()
    {
        _m = new BenchMachine(ramBytes: 16UL << 20);
        var port = new SystemMemoryPort(_m.Kernel.Memory);
        var roots = new PageTableRoots(4);
        _mmu = new DeviceMmu(_m.Kernel.Scheduler, roots, port);
        roots[DmaBenchMachine.Asid] = DevicePte.Table(Aperture.System, AllocPage());
        _flat = new ulong[Pages];
        for (int i = 0; i < Pages; i++)
        {
            var leaf = DevicePte.Leaf(Aperture.System, AllocPage(), PtePermissions.ReadWrite);
            _flat[i] = leaf.Value;
            Map(port, roots, Va + ((ulong)i << 12), leaf);
        }
        _heldUse = _mmu.BeginUse();
        if (TlbHit() != FlatArray() || TlbHitFirstTouchPerUse() * Passes != FlatArray())
            throw new InvalidOperationException("The TLB and the flat table disagree.");
        if (_mmu.Stats.Misses != Pages)
            throw new InvalidOperationException($"Expected {Pages} misses (the first pass), saw {_mmu.Stats.Misses}.");

        ulong AllocPage()
        {
            if (_m.Kernel.Memory.AllocPage(Gfp.Kernel | Gfp.Zero, out ulong pfn) != Errno.Ok)
                throw new InvalidOperationException("Out of memory.");
            return pfn << PhysicalMemory.PageShift;
        }

        void Map(SystemMemoryPort p, PageTableRoots r, ulong va, DevicePte leaf)
        {
            var table = r[DmaBenchMachine.Asid];
            for (int level = DevicePageTable.Levels; level > 1; level--)
            {
                ulong ea = DevicePageTable.EntryAddress(table.Address, level, va);
                p.TryReadUInt64(ea, out ulong raw);
                var entry = new DevicePte(raw);
                if (!entry.IsValid)
                {
                    entry = DevicePte.Table(Aperture.System, AllocPage());
                    p.TryWriteUInt64(ea, entry.Value);
                }
                table = entry;
            }
            p.TryWriteUInt64(DevicePageTable.EntryAddress(table.Address, 1, va), leaf.Value);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _mmu.EndUse(_heldUse);
        _m.Dispose();
    }

    /// <summary>The baseline: a flat page table indexed by page number, the same rights check and result.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Pages * Passes)]
    public ulong FlatArray()
    {
        ulong sum = 0;
        var flat = _flat;
        for (int pass = 0; pass < Passes; pass++)
        {
            for (int i = 0; i < Pages; i++)
            {
                ulong address = Va + ((ulong)i << 12) + 8;
                sum += FlatTranslate(flat, address, DevicePte.ReadBit).Address;
            }
        }
        return sum;
    }

    /// <summary>DeviceMmu.Translate, every lookup a TLB hit, under one long-held use.</summary>
    [Benchmark(OperationsPerInvoke = Pages * Passes)]
    public ulong TlbHit()
    {
        ulong sum = 0;
        var mmu = _mmu;
        var use = _heldUse;
        for (int pass = 0; pass < Passes; pass++)
        {
            for (int i = 0; i < Pages; i++)
            {
                ulong address = Va + ((ulong)i << 12) + 8;
                sum += mmu.Translate(use, DmaBenchMachine.Asid, address, Access.Read).Address;
            }
        }
        return sum;
    }

    /// <summary>DeviceMmu.Translate of each page once under a fresh use (as per DMA descriptor); every lookup a TLB hit.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong TlbHitFirstTouchPerUse()
    {
        ulong sum = 0;
        var mmu = _mmu;
        var use = mmu.BeginUse();
        for (int i = 0; i < Pages; i++)
        {
            ulong address = Va + ((ulong)i << 12) + 8;
            sum += mmu.Translate(use, DmaBenchMachine.Asid, address, Access.Read).Address;
        }
        mmu.EndUse(use);
        return sum;
    }

    private static TranslationResult FlatTranslate(ulong[] flat, ulong address, ulong need)
    {
        ulong pte = flat[(int)((address - Va) >> DevicePageTable.PageShift)];
        if ((pte & need) != need)
            return TranslationResult.Fail(TranslationStatus.Permission);
        ulong offset = address & (DevicePageTable.PageSize - 1);
        var aperture = (pte & DevicePte.VramBit) != 0 ? Aperture.Vram : Aperture.System;
        return new TranslationResult(TranslationStatus.Ok, aperture, (pte & DevicePte.AddressMask) | offset,
            DevicePageTable.PageSize - offset);
    }
}
