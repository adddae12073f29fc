using FsCheck;
using FsCheck.Experimental;
using HmmEmu.Simulation;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// The coherence suite's entry points. A driver author checks a driver in an xunit test with
/// <c>CoherenceSuite.Check(new CoherenceConfig { Target = new MyTarget() }).ThrowIfFailed()</c>, or returns
/// <see cref="Property"/> from an FsCheck <c>[Property]</c> method. A failure reports the configuration (seed
/// included), the shrunk command list, the rule broken, and a one-line replay.
/// </summary>
public static class CoherenceSuite
{
    /// <summary>The machine as an FsCheck property (for <c>[Property]</c> tests and custom runners).</summary>
    public static Property Property(CoherenceConfig config, int maxCommands = 40, bool swarm = true) =>
        new CoherenceMachine(config, maxCommands, swarm).ToProperty();

    /// <summary>
    /// Runs <paramref name="cases"/> generated cases (FsCheck seed <paramref name="replay"/> if given, else a fresh
    /// one) and returns the result, shrunk if a case failed: the command list by FsCheck, then (unless
    /// <paramref name="shrinkSchedule"/> is false) the interleaving by <see cref="ShrinkSchedule"/>.
    /// </summary>
    public static CoherenceReport Check(CoherenceConfig config, int cases = 100, int maxCommands = 40, bool swarm = true, (ulong Seed, ulong Gamma)? replay = null, bool shrinkSchedule = true)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cases);
        var machine = new CoherenceMachine(config, maxCommands, swarm);
        var runner = new CapturingRunner();
        var fsConfig = Config.Quick.WithMaxTest(cases).WithRunner(runner).WithQuietOnSuccess(true);
        if (replay is (ulong seed, ulong gamma))
            fsConfig = fsConfig.WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(seed, gamma), FSharpOption<int>.None)));
        FsCheck.Check.One(fsConfig, machine.ToProperty());
        return runner.Report(config, machine.Counters, maxCommands, swarm, shrinkSchedule);
    }

    /// <summary>
    /// Runs one given command list on a fresh machine with <paramref name="config"/> (no generation, no shrinking):
    /// replays a counterexample or a kept regression case. Returns the rules broken and the trace hash.
    /// </summary>
    public static ReplayResult Replay(CoherenceConfig config, IEnumerable<CoherenceCommand> commands)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(commands);
        using var system = new CoherenceSystem(config);
        var model = ShapeModel.Initial(config);
        int steps = 0;
        foreach (var c in commands)
        {
            if (!c.Pre(model))
                continue;                        // as FsCheck does for a shrunk list: skip what no longer applies
            model = c.Next(model);
            steps++;
            var v = system.Step(c);
            if (v.Count > 0)
                return new ReplayResult(steps, [.. v.Select(x => $"{c}: {x}")], system.TraceHash, system.Counters) { Decisions = system.Kernel.Scheduler.Decisions };
        }
        var leaks = system.TearDown();
        return new ReplayResult(steps, leaks, system.TraceHash, system.Counters) { Decisions = system.Kernel.Scheduler.Decisions };
    }

    /// <summary>
    /// Shrinks the interleaving of a failing command list after the list itself: replays it seeded, turns the
    /// scheduler's decisions into a script, and drops forced switches (halves, then quarters, … then one at a
    /// time) while the replay still breaks <paramref name="rule"/> (an invariant name such as "INV-7", or "rule").
    /// Returns the script and the number of choice points of the seeded run, or null if the seeded replay does not
    /// break the rule. At most <paramref name="budget"/> replays.
    /// </summary>
    public static (ScheduleScript Schedule, int ChoicePoints)? ShrinkSchedule(CoherenceConfig config, IReadOnlyList<CoherenceCommand> commands, string rule, int budget = 200)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(commands);
        ArgumentException.ThrowIfNullOrEmpty(rule);
        bool Breaks(ScheduleScript? s) => Replay(config with { Schedule = s }, commands).Problems.Any(p => p.Contains(rule, StringComparison.Ordinal));
        var seeded = Replay(config with { Schedule = null }, commands);
        if (!seeded.Problems.Any(p => p.Contains(rule, StringComparison.Ordinal)))
            return null;
        var script = ScheduleScript.FromLog(seeded.Decisions);
        if (!Breaks(script))
            return null;    // cannot happen in a deterministic simulation; reported as not shrunk rather than wrong
        for (int chunk = Math.Max(1, script.Count / 2); script.Count > 0 && budget > 0; chunk = Math.Max(1, chunk / 2))
        {
            bool dropped = false;
            var keys = script.Forced.Keys.ToList();
            for (int start = 0; start < keys.Count && budget > 0;)
            {
                var candidate = script.Without(keys.Skip(start).Take(chunk));
                budget--;
                if (Breaks(candidate))
                {
                    script = candidate;
                    keys = [.. script.Forced.Keys];
                    dropped = true;
                }
                else
                {
                    start += chunk;
                }
            }
            if (chunk == 1 && !dropped)
                break;
        }
        return (script, seeded.Decisions.Count);
    }

    /// <summary>Generates a command list from <paramref name="seed"/> without running it (for replays and determinism checks).</summary>
    public static IReadOnlyList<CoherenceCommand> Generate(CoherenceConfig config, ulong seed, int count)
    {
        ArgumentNullException.ThrowIfNull(config);
        var model = ShapeModel.Initial(config);
        var list = new List<CoherenceCommand>();
        for (ulong i = 0; i < (ulong)count * 4 && list.Count < count; i++)
        {
            var rnd = new Rnd(seed * 0x9E37_79B9_7F4A_7C15UL + i, 0xBF58_476D_1CE4_E5B9UL);
            var c = FsCheck.Fluent.Gen.Sample(CommandGenerator.Next(model), 10, rnd, 1)[0];
            if (!c.Pre(model))
                continue;
            list.Add(c);
            model = c.Next(model);
        }
        return list;
    }

    private sealed class CapturingRunner : IRunner
    {
        private TestResult? _result;

        public void OnStartFixture(Type t)
        {
        }

        public void OnArguments(int ntest, FSharpList<object> args, FSharpFunc<int, FSharpFunc<FSharpList<object>, string>> every)
        {
        }

        public void OnShrink(FSharpList<object> args, FSharpFunc<FSharpList<object>, string> everyShrink)
        {
        }

        public void OnFinished(string name, TestResult testResult) => _result = testResult;

        public CoherenceReport Report(CoherenceConfig config, CoherenceCounters counters, int maxCommands, bool swarm, bool shrinkSchedule)
        {
            switch (_result)
            {
                case TestResult.Passed p:
                    return new CoherenceReport(config, p.Item1.NumberOfTests, null, counters);
                case TestResult.Exhausted e:
                    return new CoherenceReport(config, e.Item.NumberOfTests, new CoherenceFailure(config, [], ["exhausted: too many cases rejected"], 0, default), counters);
                case TestResult.Failed f:
                    var run = f.Item3.Head as MachineRun<CoherenceSystem, ShapeModel>;
                    var commands = run is null ? [] : run.Operations.Select(o => o.Item1).OfType<CoherenceOperation>().Select(o => o.Command).ToList();
                    var failedConfig = run?.Setup.Item1.Config ?? config;
                    var labels = f.Item1.Labels.Where(l => l != "ok").ToList();
                    if (f.Item4 is Outcome.Failed exn)
                        labels.Add(exn.Item.Message);
                    var failure = new CoherenceFailure(failedConfig, commands, labels, f.Item1.NumberOfShrinks, (f.Item5.Seed, f.Item5.Gamma), maxCommands, swarm);
                    if (shrinkSchedule && failure.Invariants is [var rule, ..] && ShrinkSchedule(failedConfig, commands, rule) is var (schedule, points))
                        failure = failure with { Schedule = schedule, ChoicePoints = points };
                    return new CoherenceReport(config, f.Item1.NumberOfTests, failure, counters);
                default:
                    throw new InvalidOperationException("FsCheck finished without a result.");
            }
        }
    }
}
