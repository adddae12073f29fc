using BenchmarkDotNet.Attributes;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Benchmarks;

/// <summary>
/// Goal (b): the cost of unmapping one page grows at most 2x from 1 Ki to 1 Mi mapped pages, with 64 interval
/// notifiers registered (each watching 1/64 of the mapping). One operation unmaps one page (one MMU_NOTIFY_UNMAP,
/// a VMA split, the PTE cleared), maps it again with MAP_FIXED (the VMAs merge back) and faults it in again, so
/// every operation starts from the same state. Pages are faulted by reads (the shared zero page) so that a
/// million mapped pages need no 4 GiB of simulated RAM; the unmap path does the same work for them.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 12)]
public class MunmapScalingBenchmarks
{
    private const int Notifiers = 64;
    private BenchMachine _m = null!;
    private ulong _addr;
    private int _next;

    [Params(1024, 32 * 1024, 1024 * 1024)]
    public int MappedPages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _m = new BenchMachine();
        ulong bytes = (ulong)MappedPages << 12;
        _addr = _m.Process.Map(bytes, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        _m.Populate(_addr, MappedPages, write: false);
        ulong slice = bytes / Notifiers;
        for (int i = 0; i < Notifiers; i++)
        {
            var n = new MmuIntervalNotifier(new BenchMachine.SeqOnlyOps());
            if (n.Insert(_m.Mm, _addr + ((ulong)i * slice), slice) != Errno.Ok)
                throw new InvalidOperationException("notifier insert failed");
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _m.Dispose();

    [Benchmark]
    public Errno MunmapOnePage()
    {
        // Walk the mapping with a large odd stride so successive operations touch different tables and notifiers.
        _next = (_next + 4099) % MappedPages;
        ulong a = _addr + ((ulong)_next << 12);
        var mm = _m.Mm;
        var err = mm.Munmap(a, 4096);
        mm.Mmap(a, 4096, Prot.ReadWrite, MapFlags.PrivateAnonymous | MapFlags.Fixed, out _);
        Span<byte> b = stackalloc byte[1];
        mm.CopyFromUser(a, b);
        return err;
    }
}
