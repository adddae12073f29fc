using BenchmarkDotNet.Attributes;
using HmmEmu.Gpu.Driver;

namespace HmmEmu.Benchmarks.Gpu;

/// <summary>
/// One-way VRAM migrations of 64 MiB against one <see cref="Span{T}.CopyTo"/> of the same size, each iteration one
/// invocation after an iteration setup (so the baseline gets an empty one and is measured the same way).
/// <see cref="PrefetchToVram"/>: Prefetch(VRAM) from system memory (the setup brings the buffer back first, unmeasured).
/// <see cref="PrefetchToSystem"/>: Prefetch(System) from VRAM (the setup sends it there first, unmeasured).
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 8)]
public class GpuMigrationOneWayBenchmarks
{
    private byte[] _from = null!;
    private byte[] _to = null!;
    private GpuMigrationBuffer _buffer = null!;

    [GlobalSetup(Target = nameof(SpanCopyToOnce))]
    public void SetupCopy() => (_from, _to) = GpuMigrationBenchmarks.CopyArrays();

    [GlobalCleanup(Target = nameof(SpanCopyToOnce))]
    public void CleanupCopy() => GpuMigrationBenchmarks.CheckCopy(_from, _to);

    [GlobalSetup(Targets = [nameof(PrefetchToVram), nameof(PrefetchToSystem)])]
    public void SetupGpu() => _buffer = new GpuMigrationBuffer();

    [GlobalCleanup(Targets = [nameof(PrefetchToVram), nameof(PrefetchToSystem)])]
    public void CleanupGpu() => _buffer.CheckAndDispose();

    [IterationSetup(Target = nameof(SpanCopyToOnce))]
    public void NothingToSetUp() { }

    [IterationSetup(Target = nameof(PrefetchToVram))]
    public void BackToSystem()
    {
        if (_buffer.InVram)
            _buffer.Move(GpuMemoryTarget.System);
    }

    [IterationSetup(Target = nameof(PrefetchToSystem))]
    public void OutToVram()
    {
        if (!_buffer.InVram)
            _buffer.Move(GpuMemoryTarget.Vram);
    }

    /// <summary>The baseline: 64 MiB copied between two arrays, once per iteration.</summary>
    [Benchmark(Baseline = true)]
    public void SpanCopyToOnce() => _from.AsSpan().CopyTo(_to);

    /// <summary>Prefetch(VRAM) of the 64 MiB buffer from system memory.</summary>
    [Benchmark]
    public void PrefetchToVram() => _buffer.Move(GpuMemoryTarget.Vram);

    /// <summary>Prefetch(System) of the 64 MiB buffer from VRAM.</summary>
    [Benchmark]
    public void PrefetchToSystem() => _buffer.Move(GpuMemoryTarget.System);
}
