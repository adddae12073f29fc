using BenchmarkDotNet.Attributes;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Benchmarks;

/// <summary>
/// Goal (issue 3): 4 KiB-page migration reaches at least 25%, and 2 MiB-page migration at least 50%, of the
/// throughput of copying the same bytes with <see cref="Span{T}.CopyTo"/>. One operation migrates the whole buffer
/// system→device-coherent memory and back through VmaSetup/VmaPages/VmaFinalize with a minimal driver that
/// allocates and copies every page: in 64-page chunks for 4 KiB pages; in 512-page chunks with
/// <see cref="MigrateSelect.Compound"/> and 2 MiB destinations for a THP-backed buffer. The baseline copies the same
/// number of bytes twice between two arrays. The mirror-driver version of the selftest is <see cref="ThpMigrationBenchmarks"/>.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 8)]
public class MigrationThroughputBenchmarks
{
    private const int SmallChunk = 64;
    private const int HugePages = MigratePfn.CompoundPages;
    private const ulong TwoMeg = 2UL << 20;
    private BenchMachine _m = null!;
    private BenchDevice _device = null!;
    private ulong _small;
    private ulong _huge;
    private CopyBaseline _copy = null!;
    private readonly ulong[] _src = new ulong[HugePages];
    private readonly ulong[] _dst = new ulong[HugePages];

    [Params(128, 2048, 65536)]
    public int Pages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _m = new BenchMachine(ramBytes: 3UL << 29);
        _device = new BenchDevice(_m.Kernel, 65536);
        _small = _m.Process.Map((ulong)Pages << 12, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        if (_m.Mm.Madvise(_small, (ulong)Pages << 12, Advice.NoHugePage) != Errno.Ok)
            throw new InvalidOperationException("madvise failed");
        _m.Populate(_small, Pages, write: true);
        ulong raw = _m.Process.Map(((ulong)Pages << 12) + TwoMeg, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        _huge = (raw + TwoMeg - 1) & ~(TwoMeg - 1);
        if (_m.Mm.Madvise(_huge, (ulong)Pages << 12, Advice.HugePage) != Errno.Ok)
            throw new InvalidOperationException("madvise failed");
        _m.Populate(_huge, Pages, write: true);
        _copy = new CopyBaseline((ulong)Pages << 12);
    }

    [GlobalCleanup]
    public void Cleanup() => _m.Dispose();

    /// <summary>The same bytes copied twice (there and back) with Span.CopyTo.</summary>
    [Benchmark(Baseline = true)]
    public void SpanCopyTo() => _copy.RoundTrip();

    /// <summary>System→device then device→system, 4 KiB pages.</summary>
    [Benchmark]
    public void MigrateRoundTrip4K()
    {
        Run(_small, MigrateSelect.System, SmallChunk);
        Run(_small, MigrateSelect.DeviceCoherent, SmallChunk);
    }

    /// <summary>System→device then device→system, 2 MiB pages (a buffer under 2 MiB has none and moves as 4 KiB pages).</summary>
    [Benchmark]
    public void MigrateRoundTrip2M()
    {
        Run(_huge, MigrateSelect.System | MigrateSelect.Compound, HugePages);
        Run(_huge, MigrateSelect.DeviceCoherent | MigrateSelect.Compound, HugePages);
    }

    private void Run(ulong addr, MigrateSelect select, int chunk)
    {
        var mm = _m.Mm;
        bool toDevice = (select & MigrateSelect.System) != 0;
        using (mm.MmapReadLock())
        {
            var vma = mm.VmaLookup(addr)!;
            ulong end = addr + ((ulong)Pages << 12);
            for (ulong a = addr; a < end; a += (ulong)chunk << 12)
            {
                var args = new MigrateVma
                {
                    Vma = vma, Start = a, End = Math.Min(end, a + ((ulong)chunk << 12)), Src = _src, Dst = _dst,
                    PgmapOwner = _device, Flags = select,
                };
                if (Migrate.VmaSetup(args) != Errno.Ok)
                    throw new InvalidOperationException("setup failed");
                for (ulong i = 0; i < args.NPages; i++)
                {
                    _dst[i] = 0;
                    if ((_src[i] & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(_src[i]) is not ulong s)
                        continue;
                    bool huge = (_src[i] & MigratePfn.Compound) != 0;
                    ulong d = toDevice ? _device.Alloc(huge) : AllocSystem(huge);
                    int n = huge ? HugePages : 1;
                    for (int j = 0; j < n; j++)
                        _m.Kernel.Memory.CopyPage(d + (ulong)j, s + (ulong)j);
                    _dst[i] = MigratePfn.From(d) | (_src[i] & MigratePfn.Write) | (huge ? MigratePfn.Compound : 0);
                }
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
            }
        }
    }

    private ulong AllocSystem(bool huge)
    {
        var mem = _m.Kernel.Memory;
        ulong d;
        var err = huge ? mem.AllocContiguous(9, Gfp.HighUser, out d) : mem.AllocPage(Gfp.HighUser, out d);
        if (err != Errno.Ok)
            throw new InvalidOperationException("out of memory");
        for (int j = 0; j < (huge ? HugePages : 1); j++)
            mem.LockPage(d + (ulong)j);
        return d;
    }

    /// <summary>
    /// A device with coherent memory and two free lists, the minimum a migrating driver needs: small pages in the
    /// first half, 2 MiB runs in the second (a run goes back on its list when all its frames are free again).
    /// </summary>
    private sealed class BenchDevice : IDevicePagemapOps
    {
        private readonly Stack<ulong> _free = new();
        private readonly Stack<ulong> _freeRuns = new();
        private readonly int[] _runFreeFrames;
        private readonly DevicePagemap _pagemap;
        private readonly ulong _hugeBase;

        public BenchDevice(HostKernel kernel, int pagesPerKind)
        {
            _pagemap = DevicePagemap.Register(kernel, MemoryType.DeviceCoherent, 2 * pagesPerKind, this, this);
            _hugeBase = _pagemap.FirstPfn + (ulong)pagesPerKind;
            for (ulong p = _hugeBase; p-- > _pagemap.FirstPfn;)
                _free.Push(p);
            _runFreeFrames = new int[pagesPerKind / HugePages];
            for (int r = _runFreeFrames.Length; r-- > 0;)
                _freeRuns.Push(_hugeBase + (ulong)(r * HugePages));
        }

        public ulong Alloc(bool huge)
        {
            ulong first = huge ? _freeRuns.Pop() : _free.Pop();
            for (int j = 0; j < (huge ? HugePages : 1); j++)
                _pagemap.InitPage(first + (ulong)j);
            return first;
        }

        public VmFaultResult MigrateToRam(DeviceFault fault) => VmFaultResult.SigBus;

        public void PageFree(ulong pfn)
        {
            if (pfn < _hugeBase)
            {
                _free.Push(pfn);
                return;
            }
            int run = (int)((pfn - _hugeBase) / HugePages);
            if (++_runFreeFrames[run] == HugePages)
            {
                _runFreeFrames[run] = 0;
                _freeRuns.Push(_hugeBase + (ulong)(run * HugePages));
            }
        }
    }
}
