using BenchmarkDotNet.Attributes;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Benchmarks;

/// <summary>
/// Goal (a): a RangeFault snapshot of N present pages costs at most 3x a bare walk of the same CPU page table, per
/// page. Both read the same entries; RangeFault adds the VMA walk, the sequence check and the output encoding.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 12)]
public class RangeFaultSnapshotBenchmarks
{
    private BenchMachine _m = null!;
    private MmuIntervalNotifier _notifier = null!;
    private HmmRange _range = null!;
    private ulong _addr;

    [Params(512, 16384)]
    public int Pages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _m = new BenchMachine();
        _addr = _m.Process.Map((ulong)Pages << 12, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        _m.Populate(_addr, Pages, write: true);
        _notifier = new MmuIntervalNotifier(new BenchMachine.SeqOnlyOps());
        if (_notifier.Insert(_m.Mm, _addr, (ulong)Pages << 12) != Errno.Ok)
            throw new InvalidOperationException("notifier insert failed");
        _range = new HmmRange(_notifier, _addr, _addr + ((ulong)Pages << 12));
    }

    [GlobalCleanup]
    public void Cleanup() => _m.Dispose();

    /// <summary>The baseline: read every PTE of the range from the CPU page table.</summary>
    [Benchmark(Baseline = true)]
    public ulong BareWalk()
    {
        ulong acc = 0;
        var mm = _m.Mm;
        for (int i = 0; i < Pages; i++)
            acc += mm.GetPte(_addr + ((ulong)i << 12)).Raw;
        return acc;
    }

    /// <summary>hmm_range_fault with no fault requested (a snapshot), under the mmap read lock, with ReadBegin.</summary>
    [Benchmark]
    public Errno RangeFaultSnapshot()
    {
        _range.NotifierSeq = _notifier.ReadBegin();
        using (_m.Mm.MmapReadLock())
            return Hmm.RangeFault(_range);
    }
}
