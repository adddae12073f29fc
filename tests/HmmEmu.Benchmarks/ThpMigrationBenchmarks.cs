using BenchmarkDotNet.Attributes;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Vm;
using HmmEmu.Mirror;

namespace HmmEmu.Benchmarks;

/// <summary>
/// The port of hmm-tests.c's <c>benchmark_thp_migration</c>: a buffer of each size, backed by transparent huge pages
/// (MADV_HUGEPAGE) or not (MADV_NOHUGEPAGE), migrated to a mirror device's private memory and back with the
/// HMM_DMIRROR_MIGRATE_TO_DEV and _TO_SYS ioctls. One operation is one round trip; the baseline copies the same
/// bytes twice (there and back) with <see cref="Span{T}.CopyTo"/>. Goal (issue 3): with THP, at least 50% of the
/// baseline's throughput; without, at least 25%.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class ThpMigrationBenchmarks
{
    private const ulong TwoMeg = 2UL << 20;
    private BenchMachine _m = null!;
    private MirrorDevice _device = null!;
    private MirrorFile _file = null!;
    private ulong _addr;
    private ulong _buffer;
    private CopyBaseline _copy = null!;

    /// <summary>Buffer size in KiB: 512K, 2M, 8M and 256M of the selftest's 512K…256M list (the rest add run time, not information).</summary>
    [Params(512, 2048, 8192, 262144)]
    public int SizeKiB { get; set; }

    /// <summary>Whether the buffer is THP-backed (MADV_HUGEPAGE) or not (MADV_NOHUGEPAGE).</summary>
    [Params(true, false)]
    public bool Thp { get; set; }

    private ulong Size => (ulong)SizeKiB << 10;

    [GlobalSetup]
    public void Setup()
    {
        _m = new BenchMachine(ramBytes: 3UL << 29);
        _device = new MirrorDevice(_m.Kernel, 0, MemoryType.DevicePrivate, pages: 65536);
        EnterProcess();
        if (_device.Open(out var file) != Errno.Ok)
            throw new InvalidOperationException("open failed");
        _file = file!;
        ulong raw = _m.Process.Map(Size + TwoMeg, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        _addr = (raw + TwoMeg - 1) & ~(TwoMeg - 1);
        if (_m.Mm.Madvise(_addr, Size, Thp ? Advice.HugePage : Advice.NoHugePage) != Errno.Ok)
            throw new InvalidOperationException("madvise failed");
        _m.Populate(_addr, (int)(Size >> 12), write: true);
        _buffer = _m.Process.Map(Size, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        _copy = new CopyBaseline(Size);
    }

    [GlobalCleanup]
    public void Cleanup() => _m.Dispose();

    /// <summary>The same bytes copied twice (there and back) with Span.CopyTo.</summary>
    [Benchmark(Baseline = true)]
    public void SpanCopyTo() => _copy.RoundTrip();

    /// <summary>HMM_DMIRROR_MIGRATE_TO_DEV then HMM_DMIRROR_MIGRATE_TO_SYS over the whole buffer.</summary>
    [Benchmark]
    public void MigrateRoundTrip()
    {
        EnterProcess();
        var cmd = new MirrorCommand { Addr = _addr, Ptr = _buffer, NPages = Size >> 12 };
        if (_file.Ioctl(MirrorIoctl.MigrateToDevice, ref cmd) != Errno.Ok)
            throw new InvalidOperationException("migrate to device failed");
        cmd = new MirrorCommand { Addr = _addr, Ptr = _buffer, NPages = Size >> 12 };
        if (_file.Ioctl(MirrorIoctl.MigrateToSystem, ref cmd) != Errno.Ok)
            throw new InvalidOperationException("migrate to system failed");
    }

    // The benchmark thread acts as a thread of the process (the mirror binds to the caller's address space).
    private void EnterProcess() => TaskContext.For(_m.Kernel).Process = _m.Process;
}
