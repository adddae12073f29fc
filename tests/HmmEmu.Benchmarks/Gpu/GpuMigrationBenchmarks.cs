using BenchmarkDotNet.Attributes;
using HmmEmu.Gpu.Driver;

namespace HmmEmu.Benchmarks.Gpu;

/// <summary>
/// VRAM migration throughput (issue 5) against <see cref="Span{T}.CopyTo"/> of the same 64 MiB in the same run.
/// <see cref="PrefetchRoundTrip"/>: Prefetch(VRAM) of the populated buffer (migrate_vma through the GPU's copy engine,
/// then the pages mapped on the GPU) and Prefetch(System) back, reported per 64 MiB move. The one-way moves, which
/// need an iteration setup, are <see cref="GpuMigrationOneWayBenchmarks"/>. The cleanup checks the migration counters
/// and the buffer's contents.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 6)]
public class GpuMigrationBenchmarks
{
    private byte[] _from = null!;
    private byte[] _to = null!;
    private GpuMigrationBuffer _buffer = null!;

    [GlobalSetup(Target = nameof(SpanCopyTo))]
    public void SetupCopy() => (_from, _to) = CopyArrays();

    [GlobalCleanup(Target = nameof(SpanCopyTo))]
    public void CleanupCopy() => CheckCopy(_from, _to);

    [GlobalSetup(Target = nameof(PrefetchRoundTrip))]
    public void SetupGpu() => _buffer = new GpuMigrationBuffer();

    [GlobalCleanup(Target = nameof(PrefetchRoundTrip))]
    public void CleanupGpu() => _buffer.CheckAndDispose();

    /// <summary>The baseline: 64 MiB copied between two arrays.</summary>
    [Benchmark(Baseline = true)]
    public void SpanCopyTo() => _from.AsSpan().CopyTo(_to);

    /// <summary>To VRAM and back, reported per 64 MiB move.</summary>
    [Benchmark(OperationsPerInvoke = 2)]
    public void PrefetchRoundTrip()
    {
        _buffer.Move(GpuMemoryTarget.Vram);
        _buffer.Move(GpuMemoryTarget.System);
    }

    internal static (byte[] From, byte[] To) CopyArrays()
    {
        var from = new byte[GpuMigrationBuffer.Bytes];
        for (int i = 0; i < from.Length; i++)
            from[i] = (byte)(i * 31);
        return (from, new byte[GpuMigrationBuffer.Bytes]);
    }

    internal static void CheckCopy(byte[] from, byte[] to)
    {
        if (!from.AsSpan().SequenceEqual(to))
            throw new InvalidOperationException("The baseline copy is wrong.");
    }
}
