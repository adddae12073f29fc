using BenchmarkDotNet.Attributes;
using HmmEmu.Gpu.Driver;

namespace HmmEmu.Benchmarks.Gpu;

/// <summary>
/// Goal (issue 5): SAXPY on the GPU model over 64 MiB of resident, mapped memory reaches at least 0.5× the throughput
/// of the same SAXPY as a plain C# loop over two float spans of the same size (ratio ≤ 2). x and y are 64 MiB each
/// (16 Mi floats). "Resident, mapped": before measuring, the setup runs the kernel once (every page faults in and is
/// mapped on the GPU) and, for <see cref="GpuSaxpyPlacement.Vram"/>, prefetches x and y to VRAM; it then checks that a
/// second launch takes no fault, and the cleanup checks that the measured launches took none either. One operation
/// is one launch and its wait (command submission, the compute engine's page-by-page walk through the device MMU,
/// the fence interrupt). Values are small integers, so the cleanup checks y exactly against the launch count.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 6)]
public class GpuSaxpyBenchmarks
{
    private const int Count = 16 << 20;
    private const ulong Bytes = (ulong)Count * sizeof(float);
    private const float A = 1f;

    private GpuBenchMachine _m = null!;
    private ulong _x;
    private ulong _y;
    private long _faultsAfterSetup;
    private long _gpuLaunches;
    private float[] _xs = null!;
    private float[] _ys = null!;
    private long _loopRuns;

    /// <summary>Where x and y live while the kernel runs.</summary>
    [Params(GpuSaxpyPlacement.System, GpuSaxpyPlacement.Vram)]
    public GpuSaxpyPlacement Placement { get; set; }

    [GlobalSetup(Target = nameof(CpuLoop))]
    public void SetupLoop()
    {
        _xs = new float[Count];
        _ys = new float[Count];
        for (int i = 0; i < Count; i++)
            _xs[i] = X(i);
    }

    [GlobalCleanup(Target = nameof(CpuLoop))]
    public void CleanupLoop() => Check("CpuLoop", _loopRuns, i => _ys[i]);

    [GlobalSetup(Target = nameof(GpuSaxpy))]
    public void SetupGpu()
    {
        _m = new GpuBenchMachine(ramBytes: 512UL << 20, vramBytes: 256UL << 20);
        _x = _m.MapAnonymous(Bytes);
        _y = _m.MapAnonymous(Bytes);
        var xs = new float[Count];
        for (int i = 0; i < Count; i++)
            xs[i] = X(i);
        _m.Write<float>(_x, xs);
        _m.Write<float>(_y, new float[Count]);
        var ctx = _m.Context;
        _m.WaitOk(ctx.Saxpy(_y, _x, Count, A));            // faults everything in and maps it on the GPU
        _gpuLaunches = 1;
        if (Placement == GpuSaxpyPlacement.Vram)
        {
            _m.PrefetchOk(_x, Bytes, GpuMemoryTarget.Vram);
            _m.PrefetchOk(_y, Bytes, GpuMemoryTarget.Vram);
            long moved = ctx.Stats.MigratedToVram;
            if (moved != 2 * (long)(Bytes >> 12))
                throw new InvalidOperationException($"Expected x and y ({2 * (Bytes >> 12)} pages) in VRAM, {moved} moved: {ctx.Stats}");
        }
        long faults = ctx.Stats.Faults;
        GpuSaxpy();
        if (ctx.Stats.Faults != faults)
            throw new InvalidOperationException($"The second launch faulted: memory is not resident and mapped. {ctx.Stats}");
        _faultsAfterSetup = faults;
    }

    [GlobalCleanup(Target = nameof(GpuSaxpy))]
    public void CleanupGpu()
    {
        var stats = _m.Context.Stats;
        if (stats.Faults != _faultsAfterSetup)
            throw new InvalidOperationException($"The measured launches faulted ({stats.Faults - _faultsAfterSetup}): {stats}");
        _m.AssertHealthy();
        // Reading y brings the pages read back from VRAM; the measurement is over.
        Check("GpuSaxpy", _gpuLaunches, i => _m.Read<float>(_y + ((ulong)i * sizeof(float))));
        _m.Dispose();
    }

    /// <summary>The baseline: <c>y[i] = a * x[i] + y[i]</c> over two float spans of 16 Mi elements.</summary>
    [Benchmark(Baseline = true)]
    public void CpuLoop()
    {
        Span<float> y = _ys;
        ReadOnlySpan<float> x = _xs;
        for (int i = 0; i < y.Length; i++)
            y[i] = (A * x[i]) + y[i];
        _loopRuns++;
    }

    /// <summary>One SAXPY launch over the resident, mapped 64 MiB arrays, and its wait.</summary>
    [Benchmark]
    public void GpuSaxpy()
    {
        _m.WaitOk(_m.Context.Saxpy(_y, _x, Count, A));
        _gpuLaunches++;
    }

    // Small integers: every partial sum is exact in single precision, so y is checked for equality.
    private static float X(int i) => i % 7;

    // y[i] must be runs · a · x[i] at a few places spread over the array, the last element included.
    private static void Check(string what, long runs, Func<int, float> y)
    {
        if (runs == 0)
            throw new InvalidOperationException($"{what} never ran.");
        foreach (int i in (ReadOnlySpan<int>)[0, 1, 6, 4097, Count / 2 + 3, Count - 1])
        {
            float expected = runs * A * X(i);
            if (y(i) != expected)
                throw new InvalidOperationException($"{what}: y[{i}] = {y(i)} after {runs} runs, expected {expected}.");
        }
    }
}
