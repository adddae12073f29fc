using HmmEmu.Simulation;

namespace HmmEmu.Rnic.Tests;

// Each scenario once (seed 1, deterministic), for a quick signal and readable failures; RnicScenarioSeedTests runs them
// over many seeds and threaded.
public sealed class RnicScenarioTests
{
    public static TheoryData<string> Names() => [.. RnicScenarios.All.Keys];

    [Theory]
    [MemberData(nameof(Names))]
    public void Scenario_Seed1(string name)
    {
        using var m = RnicMachine.Create(SchedulerMode.Deterministic, 1);
        m.Run(RnicScenarios.All[name]);     // each scenario asserts its data byte for byte and its statuses
        // and it really ran traffic through both NICs: completions were written and packets crossed the link.
        Assert.True(m.NicA.Stats.Completions > 0, $"{name}: NIC A wrote no completion");
        Assert.True(m.Link.Stats.Delivered > 0, $"{name}: nothing crossed the link");
    }
}
