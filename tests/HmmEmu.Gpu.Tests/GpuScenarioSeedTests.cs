using HmmEmu.Simulation;

namespace HmmEmu.Gpu.Tests;

// Each scenario of GpuScenarios over 50 deterministic seeds (each seed another interleaving of the user thread, the
// fault worker, the interrupt thread and the device's engines) and repeatedly in threaded mode. Every run also checks
// that lockdep and the kernel raised no warning and that the device reported no device-level error.
public sealed class GpuScenarioSeedTests
{
    private const int DeterministicSeeds = 50;
    private const int ThreadedRuns = 3;

    public static TheoryData<string> Names() => [.. GpuScenarios.All.Keys];

    [Theory]
    [MemberData(nameof(Names))]
    public void Scenario_DeterministicMode_HoldsForEverySeed(string name)
    {
        for (ulong seed = 1; seed <= DeterministicSeeds; seed++)
            RunOnce(name, SchedulerMode.Deterministic, seed);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Scenario_ThreadedMode_HoldsRepeatedly(string name)
    {
        for (ulong run = 1; run <= ThreadedRuns; run++)
            RunOnce(name, SchedulerMode.Threaded, run);
    }

    [Fact]
    public void Scenario_SameSeed_SameTrace()
    {
        ulong first = TraceHash(GpuScenarios.ForkWhileRunning, seed: 11);
        ulong again = TraceHash(GpuScenarios.ForkWhileRunning, seed: 11);
        ulong other = TraceHash(GpuScenarios.ForkWhileRunning, seed: 12);
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    private static void RunOnce(string name, SchedulerMode mode, ulong seed)
    {
        try
        {
            using var m = GpuMachine.Create(mode, seed);
            m.RunProcess(name, GpuScenarios.All[name]);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"Scenario {name} failed in {mode} mode with seed {seed} (replay: that seed alone).", e);
        }
    }

    private static ulong TraceHash(Action<HmmEmu.Kernel.Process, Driver.GpuDevice> body, ulong seed)
    {
        using var m = GpuMachine.Create(seed: seed);
        m.RunProcess("trace", body);
        return m.Kernel.Trace.Hash;
    }
}
