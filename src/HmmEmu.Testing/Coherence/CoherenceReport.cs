using HmmEmu.Simulation;
using System.Text;

namespace HmmEmu.Testing.Coherence;

/// <summary>The result of <see cref="CoherenceSuite.Check"/>: how many cases ran, the shrunk failure if any, and the precondition counters.</summary>
/// <param name="Config">The configuration asked for (each case had its own seed and, with swarm, its own kinds).</param>
/// <param name="Cases">Cases run (up to and including the failing one).</param>
/// <param name="Failure">The shrunk counterexample, or null if every case passed.</param>
/// <param name="Counters">Precondition counters summed over every case run, shrink attempts included.</param>
public sealed record CoherenceReport(CoherenceConfig Config, int Cases, CoherenceFailure? Failure, CoherenceCounters Counters)
{
    /// <summary>Whether every case passed.</summary>
    public bool Passed => Failure is null;

    /// <summary>Throws <see cref="CoherenceViolationException"/> with the failure report if a case failed.</summary>
    public void ThrowIfFailed()
    {
        if (Failure is not null)
            throw new CoherenceViolationException(Failure.ToString());
    }

    /// <inheritdoc />
    public override string ToString() =>
        Failure is null ? $"{Cases} case(s) passed ({Config}); {Counters}" : $"failed after {Cases} case(s):\n{Failure}";
}

/// <summary>A shrunk counterexample.</summary>
/// <param name="Config">The failing case's expanded configuration (its simulation seed and kinds).</param>
/// <param name="Commands">The shrunk command list.</param>
/// <param name="Problems">What broke.</param>
/// <param name="Shrinks">Successful shrink steps.</param>
/// <param name="Replay">The FsCheck seed that regenerates the run (before shrinking).</param>
/// <param name="MaxCommands">Commands per case of the run.</param>
/// <param name="Swarm">Whether the run used swarm configurations.</param>
public sealed record CoherenceFailure(CoherenceConfig Config, IReadOnlyList<CoherenceCommand> Commands, IReadOnlyList<string> Problems, int Shrinks, (ulong Seed, ulong Gamma) Replay, int MaxCommands = 40, bool Swarm = false)
{
    /// <summary>
    /// The shrunk interleaving: the scheduling script (forced switches) that still breaks the same rule with the
    /// shrunk commands, after the seed's decisions were replaced by "no switch" wherever the failure did not need
    /// them; null if it was not shrunk. Replay with <c>Config with { Schedule = Schedule }</c>.
    /// </summary>
    public ScheduleScript? Schedule { get; init; }

    /// <summary>The scheduler's choice points in the seeded run of the shrunk commands (what <see cref="Schedule"/> was shrunk from).</summary>
    public int ChoicePoints { get; init; }

    /// <summary>The broken invariants' names (e.g. "INV-1", "rule") found in the problems, in order of first appearance.</summary>
    public IReadOnlyList<string> Invariants =>
        [.. Problems.SelectMany(p => p.Split(' ', ':', '(', ';'))
            .Where(w => w.StartsWith("INV-", StringComparison.Ordinal) || w is "rule" or "WARN")
            .Select(w => w.TrimEnd('/', ',', ')'))
            .Distinct()];

    /// <inheritdoc />
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("configuration: ").AppendLine(Config.ToString());
        sb.Append("shrunk to ").Append(Commands.Count).Append(" command(s) in ").Append(Shrinks).AppendLine(" shrink(s):");
        for (int i = 0; i < Commands.Count; i++)
            sb.Append("  ").Append(i + 1).Append(". ").AppendLine(Commands[i].ToString());
        sb.AppendLine("broken:");
        foreach (var p in Problems)
            sb.Append("  ").AppendLine(p);
        if (Schedule is not null)
        {
            sb.Append("interleaving: ").Append(ChoicePoints).Append(" scheduler choice point(s) in the seeded run; the failure needs ")
              .Append(Schedule.Count).Append(" forced switch(es): ").Append(Schedule)
              .Append(" (CoherenceSuite.Replay(config with { Schedule = ScheduleScript.Parse(\"").Append(Schedule).AppendLine("\") }, the commands above))");
        }
        if (CoherenceTargets.DeviceList(Config) is { } devices)
        {
            sb.Append("replay: dotnet run --project src/HmmEmu.Cli -- explore --devices ")
              .Append(devices).Append(" --steps ").Append(MaxCommands).Append(Swarm ? " --swarm" : "")
              .Append(" --replay ").Append(Replay.Seed).Append(',').Append(Replay.Gamma);
            if (Config.Mutants != Kernel.KernelMutant.None)
                sb.Append(" --bug ").Append(Config.Mutants.ToString().Replace(" ", "", StringComparison.Ordinal));
        }
        else
        {
            sb.Append("replay: CoherenceSuite.Check(config, maxCommands: ").Append(MaxCommands).Append(", swarm: ").Append(Swarm ? "true" : "false")
              .Append(", replay: (").Append(Replay.Seed).Append(", ").Append(Replay.Gamma)
              .Append(")), or CoherenceSuite.Replay(config, the commands above)");
        }
        sb.AppendLine();
        return sb.ToString();
    }
}

/// <summary>The result of <see cref="CoherenceSuite.Replay"/>.</summary>
/// <param name="Steps">Commands run.</param>
/// <param name="Problems">What broke (empty if nothing).</param>
/// <param name="TraceHash">The simulation's trace hash at the end (INV-18: same seed and commands, same hash).</param>
/// <param name="Counters">The run's precondition counters.</param>
public sealed record ReplayResult(int Steps, IReadOnlyList<string> Problems, ulong TraceHash, CoherenceCounters Counters)
{
    /// <summary>The scheduler's decision at each choice point of the run (<see cref="ScheduleScript.FromLog"/> replays it).</summary>
    public IReadOnlyList<int> Decisions { get; init; } = [];
}
