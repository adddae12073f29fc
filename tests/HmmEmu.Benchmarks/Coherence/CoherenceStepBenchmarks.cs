using BenchmarkDotNet.Attributes;
using HmmEmu.Kernel;
using HmmEmu.Testing.Coherence;

namespace HmmEmu.Benchmarks.Coherence;

/// <summary>
/// Checked steps per second of the coherence suite in deterministic mode (issue 8's goal: at least 20 000 steps/s on
/// one core for the mirror-only configuration; the GPU and NIC configurations reported beside it). Each operation
/// replays one fixed 200-command case (generated from seed 7 for its configuration) on a fresh machine: boot, every
/// step with its checks, teardown. The baseline boots and tears down the same machine
/// and runs 200 empty steps (a simulated thread that does nothing, then quiescence), so the ratio shows how much of
/// a step is the cost of running a command on a simulated thread at all.
/// </summary>
[MemoryDiagnoser]
public class CoherenceStepBenchmarks
{
    private const int Steps = 200;
    private readonly CoherenceConfig _config = new() { Target = new MirrorTarget() };
    private readonly CoherenceConfig _gpu = new() { Target = new GpuTarget() };
    private readonly CoherenceConfig _nic = new() { Target = new RnicTarget() };
    private IReadOnlyList<CoherenceCommand> _commands = [];
    private IReadOnlyList<CoherenceCommand> _gpuCommands = [];
    private IReadOnlyList<CoherenceCommand> _nicCommands = [];

    /// <summary>Generates the cases.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _commands = CoherenceSuite.Generate(_config, 7, Steps);
        _gpuCommands = CoherenceSuite.Generate(_gpu, 7, Steps);
        _nicCommands = CoherenceSuite.Generate(_nic, 7, Steps);
    }

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

    /// <summary>The 200-command mirror case with every check.</summary>
    [Benchmark]
    public ulong CheckedSteps() => Run(_config, _commands);

    /// <summary>The 200-command GPU case (register-level model and SVM driver) with every check.</summary>
    [Benchmark]
    public ulong CheckedStepsGpu() => Run(_gpu, _gpuCommands);

    /// <summary>The 200-command NIC case (two NICs on a link, ODP MR) with every check.</summary>
    [Benchmark]
    public ulong CheckedStepsNic() => Run(_nic, _nicCommands);

    private static ulong Run(CoherenceConfig config, IReadOnlyList<CoherenceCommand> commands)
    {
        var r = CoherenceSuite.Replay(config, commands);
        return r.Problems.Count == 0 ? r.TraceHash : throw new InvalidOperationException(string.Join("; ", r.Problems));
    }
}
