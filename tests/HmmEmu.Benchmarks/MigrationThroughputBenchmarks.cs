using BenchmarkDotNet.Attributes;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Benchmarks;

/// <summary>
/// Goal (issue 3): 4 KiB-page migration reaches at least 25% of the throughput of copying the same bytes with
/// <see cref="Span{T}.CopyTo"/>. One operation migrates the whole buffer system→device and back device→system,
/// in 64-page chunks through VmaSetup/VmaPages/VmaFinalize, copying every page; the baseline copies the same
/// number of bytes twice between two arrays. 2 MiB pages: <see cref="ThpMigrationBenchmarks"/>.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 8)]
public class MigrationThroughputBenchmarks
{
    private const int Chunk = 64;
    private BenchMachine _m = null!;
    private BenchDevice _device = null!;
    private ulong _addr;
    private CopyBaseline _copy = null!;

    [Params(128, 2048, 65536)]
    public int Pages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _m = new BenchMachine(ramBytes: 1UL << 30);
        _device = new BenchDevice(_m.Kernel, 65536);
        _addr = _m.Process.Map((ulong)Pages << 12, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        _m.Populate(_addr, Pages, write: true);
        _copy = new CopyBaseline((ulong)(Pages << 12));
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
        Run(MigrateSelect.System);
        Run(MigrateSelect.DeviceCoherent);
    }

    private void Run(MigrateSelect select)
    {
        var mm = _m.Mm;
        var mem = _m.Kernel.Memory;
        var src = new ulong[Chunk];
        var dst = new ulong[Chunk];
        using (mm.MmapReadLock())
        {
            var vma = mm.VmaLookup(_addr)!;
            ulong end = _addr + ((ulong)Pages << 12);
            for (ulong a = _addr; a < end; a += Chunk << 12)
            {
                var args = new MigrateVma
                {
                    Vma = vma, Start = a, End = Math.Min(end, a + (Chunk << 12)), Src = src, Dst = dst,
                    PgmapOwner = _device, Flags = select,
                };
                if (Migrate.VmaSetup(args) != Errno.Ok)
                    throw new InvalidOperationException("setup failed");
                for (ulong i = 0; i < args.NPages; i++)
                {
                    dst[i] = 0;
                    if ((src[i] & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(src[i]) is not ulong s)
                        continue;
                    ulong d;
                    if (select == MigrateSelect.System)
                    {
                        d = _device.Alloc();
                    }
                    else
                    {
                        mem.AllocPage(Gfp.HighUser, out d);
                        mem.LockPage(d);
                    }
                    mem.CopyPage(d, s);
                    dst[i] = MigratePfn.From(d) | (src[i] & MigratePfn.Write);
                }
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
            }
        }
    }

    /// <summary>A device with coherent memory and a free list: the minimum a migrating driver needs.</summary>
    private sealed class BenchDevice : IDevicePagemapOps
    {
        private readonly Stack<ulong> _free = new();
        private readonly DevicePagemap _pagemap;

        public BenchDevice(HostKernel kernel, int pages)
        {
            _pagemap = DevicePagemap.Register(kernel, MemoryType.DeviceCoherent, pages, this, this);
            for (ulong p = _pagemap.FirstPfn + (ulong)pages; p-- > _pagemap.FirstPfn;)
                _free.Push(p);
        }

        public ulong Alloc()
        {
            ulong pfn = _free.Pop();
            _pagemap.InitPage(pfn);
            return pfn;
        }

        public VmFaultResult MigrateToRam(DeviceFault fault) => VmFaultResult.SigBus;

        public void PageFree(ulong pfn) => _free.Push(pfn);
    }
}
