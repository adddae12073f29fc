using HmmEmu.Simulation;

namespace HmmEmu.Rnic.Tests;

// Each scenario of RnicScenarios over 50 deterministic seeds (each seed another interleaving of the user thread, the
// driver's work queues, the interrupt thread, the NICs' engines and the link) and repeatedly in threaded mode. Every
// run also checks that lockdep and the kernel raised no warning.
public sealed class RnicScenarioSeedTests
{
    private const int DeterministicSeeds = 50;
    private const int ThreadedRuns = 3;

    public static TheoryData<string> Names() => [.. RnicScenarios.All.Keys];

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
        ulong first = TraceHash("munmap-target-during-writes", seed: 11);
        ulong again = TraceHash("munmap-target-during-writes", seed: 11);
        ulong other = TraceHash("munmap-target-during-writes", seed: 12);
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    private static void RunOnce(string name, SchedulerMode mode, ulong seed)
    {
        try
        {
            using var m = RnicMachine.Create(mode, seed);
            m.Run(RnicScenarios.All[name]);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"Scenario {name} failed in {mode} mode with seed {seed} (replay: that seed alone).", e);
        }
    }

    private static ulong TraceHash(string name, ulong seed)
    {
        using var m = RnicMachine.Create(seed: seed);
        m.Run(RnicScenarios.All[name]);
        return m.Kernel.Trace.Hash;
    }
}
