using BenchmarkDotNet.Attributes;
using HmmEmu.Kernel;
using HmmEmu.Testing.Coherence;

namespace HmmEmu.Benchmarks.Coherence;

/// <summary>
/// Checked steps per second of the coherence suite, mirror-only configuration, deterministic mode (issue 8's goal:
/// at least 20 000 steps/s on one core). Each operation replays one fixed 200-command case (generated from seed 7) on
/// a fresh machine: boot, every step with its checks, teardown. The baseline boots and tears down the same machine
/// and runs 200 empty steps (a simulated thread that does nothing, then quiescence), so the ratio shows how much of
/// a step is the cost of running a command on a simulated thread at all.
/// </summary>
[MemoryDiagnoser]
public class CoherenceStepBenchmarks
{
    private const int Steps = 200;
    private readonly CoherenceConfig _config = new() { Target = new MirrorTarget() };
    private IReadOnlyList<CoherenceCommand> _commands = [];

    /// <summary>Generates the case.</summary>
    [GlobalSetup]
    public void Setup() => _commands = CoherenceSuite.Generate(_config, 7, Steps);

    /// <summary>Boot, 200 empty simulated-thread steps, teardown.</summary>
    [Benchmark(Baseline = true)]
    public ulong EmptySteps()
    {
        using var kernel = new HostKernel(KernelOptions.For(1));
        var p = kernel.CreateProcess("P0");
        for (int i = 0; i < Steps; i++)
        {
            p.StartThread("step", () => { });
            kernel.Scheduler.Run();
        }
        return kernel.Trace.Hash;
    }

    /// <summary>The 200-command case with every check.</summary>
    [Benchmark]
    public ulong CheckedSteps()
    {
        var r = CoherenceSuite.Replay(_config, _commands);
        return r.Problems.Count == 0 ? r.TraceHash : throw new InvalidOperationException(string.Join("; ", r.Problems));
    }
}
