using HmmEmu.Gpu.Driver;
using HmmEmu.Simulation;

namespace HmmEmu.Gpu.Tests;

// Each scenario of GpuScenarios over 50 deterministic seeds (each seed another interleaving of the user thread, the
// fault worker, the interrupt thread and the device's engines) and repeatedly in threaded mode. Every run also checks
// that lockdep and the kernel raised no warning and that the device reported no device-level error.
public sealed class GpuScenarioSeedTests
{
    private const int DeterministicSeeds = 50;
    private const int ThreadedRuns = 3;

    /// <summary>Every scenario under both placement policies: migrate on the first GPU fault (the driver's default)
    /// and map system memory, migrating only on prefetch.</summary>
    public static TheoryData<string, bool> Names()
    {
        var data = new TheoryData<string, bool>();
        foreach (string name in GpuScenarios.All.Keys)
        {
            data.Add(name, true);
            data.Add(name, false);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Scenario_DeterministicMode_HoldsForEverySeed(string name, bool migrateOnFault)
    {
        for (ulong seed = 1; seed <= DeterministicSeeds; seed++)
            RunOnce(name, migrateOnFault, SchedulerMode.Deterministic, seed);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Scenario_ThreadedMode_HoldsRepeatedly(string name, bool migrateOnFault)
    {
        for (ulong run = 1; run <= ThreadedRuns; run++)
            RunOnce(name, migrateOnFault, SchedulerMode.Threaded, run);
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

    private static void RunOnce(string name, bool migrateOnFault, SchedulerMode mode, ulong seed)
    {
        try
        {
            var driver = GpuDriverOptions.Default with { MigrateAfterFaults = migrateOnFault ? 1 : 0 };
            using var m = GpuMachine.Create(mode, seed, driver: driver);
            m.RunProcess(name, GpuScenarios.All[name]);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"Scenario {name} failed in {mode} mode with seed {seed}, migrate-on-fault {migrateOnFault} (replay: that seed alone).", e);
        }
    }

    private static ulong TraceHash(Action<HmmEmu.Kernel.Process, GpuDevice> body, ulong seed)
    {
        using var m = GpuMachine.Create(seed: seed);
        m.RunProcess("trace", body);
        return m.Kernel.Trace.Hash;
    }
}
