using BenchmarkDotNet.Attributes;
using HmmEmu.Gpu.Driver;

namespace HmmEmu.Benchmarks.Gpu;

/// <summary>
/// Goal (issue 5): a kernel over freshly mapped memory, every page resolved by GPU faults, reaches at least 25% of the
/// throughput of the same kernel over prefetched memory. The kernel is Fill (u32) over a fresh 256 MiB private
/// anonymous mapping. Each iteration is one invocation: the iteration setup maps the buffer (and, for
/// <see cref="FillPrefetched"/>, prefetches it to VRAM), the iteration cleanup checks the first and last element and
/// the counters, then unmaps it; neither is measured.
/// <see cref="FirstTouchFill"/>: the launch and its wait; the GPU faults, and the driver (default policy: migrate on
/// the first fault) moves every fault-around window to VRAM (device pages zero-filled by the copy engine, as the
/// buffer has no pages yet), maps it and replays, mapping the next window ahead meanwhile. <see cref="PrefetchThenFill"/>: Prefetch(VRAM) of
/// the untouched buffer (device pages allocated and mapped on the GPU), then the launch, both measured.
/// <see cref="FillPrefetched"/> (the baseline): the launch alone over the buffer already prefetched to VRAM.
/// </summary>
[MedianColumn]
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 8)]
public class GpuFirstTouchBenchmarks
{
    private const ulong Bytes = 256UL << 20;
    private const ulong Count = Bytes / sizeof(uint);
    private const long Pages = (long)(Bytes >> 12);
    private const uint Value = 0xC0FFEE;

    private GpuBenchMachine _m = null!;
    private ulong _buf;
    private GpuContextStats _before;

    [GlobalSetup]
    public void Setup()
    {
        _m = new GpuBenchMachine(ramBytes: 768UL << 20, vramBytes: 512UL << 20);
        // One invocation per iteration leaves the fault and migration paths at tier-0 JIT code for the first few
        // iterations (measured: 3–6× slower); three rounds of every path here let them tier up before BDN starts.
        for (int round = 0; round < 3; round++)
        {
            MapFresh();
            FirstTouchFill();
            CheckFaultedAndUnmap();
            MapFresh();
            PrefetchThenFill();
            CheckPrefetchedAndUnmap();
            MapFreshAndPrefetch();
            FillPrefetched();
            CheckPrefetchedAndUnmap();
        }
        Thread.Sleep(500);          // the background tier-1 compilations finish
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _m.AssertHealthy();
        _m.Dispose();
    }

    [IterationSetup(Targets = [nameof(FirstTouchFill), nameof(PrefetchThenFill)])]
    public void MapFresh()
    {
        _buf = _m.MapAnonymous(Bytes);
        _before = _m.Context.Stats;
    }

    [IterationSetup(Target = nameof(FillPrefetched))]
    public void MapFreshAndPrefetch()
    {
        MapFresh();
        _m.PrefetchOk(_buf, Bytes, GpuMemoryTarget.Vram);
    }

    [IterationCleanup(Target = nameof(FirstTouchFill))]
    public void CheckFaultedAndUnmap()
    {
        var s = _m.Context.Stats;
        // The default policy migrates a window to VRAM on its first fault: every page, in every iteration (a fresh
        // mapping at a reused address included).
        if (s.Faults == _before.Faults || s.PagesMapped - _before.PagesMapped < Pages || s.MigratedToVram - _before.MigratedToVram != Pages)
            throw new InvalidOperationException($"First touch should fault every page in and move it to VRAM: before {_before}, after {s}");
        CheckAndUnmap();
    }

    [IterationCleanup(Targets = [nameof(PrefetchThenFill), nameof(FillPrefetched)])]
    public void CheckPrefetchedAndUnmap()
    {
        var s = _m.Context.Stats;
        if (s.Faults != _before.Faults || s.MigratedToVram - _before.MigratedToVram != Pages)
            throw new InvalidOperationException($"A prefetched buffer should move {Pages} pages and take no fault: before {_before}, after {s}");
        CheckAndUnmap();
    }

    /// <summary>Fill over an untouched buffer: every page resolved by GPU faults.</summary>
    [Benchmark]
    public void FirstTouchFill() => _m.WaitOk(_m.Context.Fill(_buf, Count, Value));

    /// <summary>Prefetch(VRAM) of the untouched buffer, then Fill.</summary>
    [Benchmark]
    public void PrefetchThenFill()
    {
        _m.PrefetchOk(_buf, Bytes, GpuMemoryTarget.Vram);
        _m.WaitOk(_m.Context.Fill(_buf, Count, Value));
    }

    /// <summary>The baseline: Fill alone over the buffer prefetched to VRAM in the iteration setup.</summary>
    [Benchmark(Baseline = true)]
    public void FillPrefetched() => _m.WaitOk(_m.Context.Fill(_buf, Count, Value));

    private void CheckAndUnmap()
    {
        uint first = _m.Read<uint>(_buf), last = _m.Read<uint>(_buf + Bytes - sizeof(uint));
        if (first != Value || last != Value)
            throw new InvalidOperationException($"Fill wrote 0x{first:x} … 0x{last:x}, expected 0x{Value:x}.");
        _m.Unmap(_buf, Bytes);
    }
}
