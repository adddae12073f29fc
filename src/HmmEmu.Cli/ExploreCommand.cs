using System.Globalization;
using System.Text.Json;
using HmmEmu.Kernel;
using HmmEmu.Testing.Coherence;

namespace HmmEmu.Cli;

/// <summary>
/// <c>hmmemu explore</c>: runs the coherence suite's generated cases one by one (case i uses FsCheck seed
/// (seed + i, gamma)), shows progress and the invariant counters, and on a failure prints the shrunk sequence and the
/// replay command. <c>--shard K/N</c> runs the cases with i mod N = K, so a campaign spreads over machines;
/// <c>explore merge</c> adds up the <c>--json</c> results of the shards.
/// </summary>
internal static class ExploreCommand
{
    private const ulong Gamma = 0x9E37_79B9_7F4A_7C15UL;

    internal const string Usage = """
        usage: hmmemu explore [--seed S] [--cases N | --minutes M] [--steps N] [--devices D[,D..]] [--swarm]
                              [--bug KERNEL-MUTANT[,..]] [--shard K/N] [--replay SEED,GAMMA] [--json FILE]
               hmmemu explore merge FILE...
          Model-based random testing of our drivers against the kernel: CPU, device and concurrent commands,
          invariants checked after every step, shrinking to a minimal failing sequence. Exits 1 on a failure.
          --devices lists the machine's devices (default mirror): mirror, gpu, nic. The leading run of one kind
          is the driver under test, the rest are companions on the same machine (mirror,mirror or nic,gpu,mirror).
          --minutes runs cases (seed, seed+1, ...) until M minutes have passed, for nightly long runs; the cases
          run are printed and written to --json, and each replays from its seed like any other.
          --bug switches on kernel mutants (the catalogue's kernel bugs): NarrowNotifierSeq, OomReapIgnoresRefusal,
          MadviseSkipsInvalidateEnd, ForkSkipsInvalidation, MprotectSkipsInvalidation, RemoveSkipsCallbackWait.
        """;

    public static int Run(string[] args)
    {
        if (args.Length > 1 && args[1] == "merge")
            return Merge(args[2..]);
        if (args.Length > 1 && args[1] is "-h" or "--help")
        {
            Console.WriteLine(Usage);
            return 0;
        }
        ulong seed = 1;
        int cases = 100, steps = 40, shard = 0, shards = 1;
        string devices = "mirror";
        bool swarm = false;
        var mutants = KernelMutant.None;
        (ulong, ulong)? replay = null;
        string? json = null;
        double minutes = 0;
        for (int i = 1; i < args.Length; i++)
        {
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--seed" when ulong.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out seed):
                    break;
                case "--cases" when int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out cases) && cases > 0:
                    break;
                case "--steps" when int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out steps) && steps > 0:
                    break;
                case "--devices":
                    devices = Value() ?? "";
                    break;
                case "--swarm":
                    swarm = true;
                    break;
                case "--bug":
                    foreach (var name in (Value() ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
                    {
                        if (!Enum.TryParse<KernelMutant>(name, ignoreCase: true, out var m) || m == KernelMutant.None)
                            return Fail($"unknown kernel mutant '{name}'.");
                        mutants |= m;
                    }
                    break;
                case "--shard":
                    var parts = (Value() ?? "").Split('/');
                    if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out shard) || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out shards) || shards <= 0 || shard < 0 || shard >= shards)
                        return Fail("--shard takes K/N with 0 <= K < N.");
                    break;
                case "--replay":
                    var r = (Value() ?? "").Split(',');
                    if (r.Length != 2 || !ulong.TryParse(r[0], CultureInfo.InvariantCulture, out ulong rs) || !ulong.TryParse(r[1], CultureInfo.InvariantCulture, out ulong rg))
                        return Fail("--replay takes SEED,GAMMA as printed by a failure.");
                    replay = (rs, rg);
                    break;
                case "--minutes" when double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out minutes) && minutes > 0:
                    cases = int.MaxValue;
                    break;
                case "--json":
                    json = Value() ?? "";
                    break;
                default:
                    return Fail($"bad or incomplete option '{args[i]}'.");
            }
        }
        CoherenceConfig config;
        try
        {
            config = CoherenceTargets.Parse(devices) with { Mutants = mutants };
        }
        catch (ArgumentException e)
        {
            return Fail($"--devices: {e.Message}");
        }
        Console.WriteLine($"exploring target={config.Target.Name} devices={devices}{(mutants == KernelMutant.None ? "" : $" kernel-mutants={mutants}")}{(swarm ? " swarm" : "")} with " +
            (replay is not null ? $"the replayed run of up to {cases} case(s)"
                : $"{(minutes > 0 ? $"cases for {minutes} minute(s)" : $"{cases} case(s)")} of up to {steps} commands (case i: FsCheck seed {seed}+i), shard {shard}/{shards}"));
        var total = new CoherenceCounters();
        int run = 0;
        CoherenceFailure? failure = null;
        // Host time only bounds the campaign (--minutes) and reports its speed; it never reaches the simulation.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var budget = minutes > 0 ? TimeSpan.FromMinutes(minutes) : TimeSpan.MaxValue;
        for (int i = 0; i < (replay is null ? cases : 1) && failure is null && clock.Elapsed < budget; i++)
        {
            if (replay is null && i % shards != shard)
                continue;
            // A replay reruns the whole FsCheck run the seed started (it stops at its first failure).
            var report = replay is { } r0 ? CoherenceSuite.Check(config, cases, steps, swarm, r0) : CoherenceSuite.Check(config, 1, steps, swarm, (seed + (ulong)i, Gamma));
            total.Merge(report.Counters);
            run++;
            failure = report.Failure;
            if (!Console.IsOutputRedirected)
            {
                Console.Write(minutes > 0
                    ? $"\r{run} cases, {clock.Elapsed:hh\\:mm\\:ss} of {budget:hh\\:mm\\:ss}"
                    : $"\r[{new string('#', (int)(30L * (i + 1) / cases)),-30}] {i + 1}/{cases} cases");
            }
            else if (run % 1000 == 0)
            {
                Console.WriteLine($"{run} cases, {clock.Elapsed:hh\\:mm\\:ss}");
            }
        }
        Console.WriteLine();
        Console.WriteLine($"{run} case(s) run in {clock.Elapsed:hh\\:mm\\:ss} ({run / Math.Max(clock.Elapsed.TotalSeconds, 1e-3):F1} cases/s), {(failure is null ? "all passed" : "FAILED")}");
        foreach (var (k, v) in total.Counts)
            Console.WriteLine($"  {k,-50} {v,10}");
        if (failure is not null)
            Console.WriteLine(failure);
        if (json is not null)
        {
            var doc = new ExploreResult(config.ToString(), shard, shards, run, failure?.ToString(), new SortedDictionary<string, long>(total.Counts.ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal));
            File.WriteAllText(json, JsonSerializer.Serialize(doc, JsonOptions));
        }
        return failure is null ? 0 : 1;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    private static int Merge(string[] files)
    {
        if (files.Length == 0)
            return Fail("explore merge needs the --json files of the shards.");
        int cases = 0;
        var failures = new List<string>();
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            var r = JsonSerializer.Deserialize<ExploreResult>(File.ReadAllText(f)) ?? throw new InvalidDataException($"{f}: not an explore result");
            cases += r.Cases;
            if (r.Failure is not null)
                failures.Add($"{f} (shard {r.Shard}/{r.Shards}):\n{r.Failure}");
            foreach (var (k, v) in r.Counters)
                counts[k] = counts.GetValueOrDefault(k) + v;
        }
        Console.WriteLine($"{files.Length} shard result(s), {cases} case(s), {failures.Count} failure(s)");
        foreach (var (k, v) in counts)
            Console.WriteLine($"  {k,-50} {v,10}");
        foreach (var f in failures)
            Console.WriteLine(f);
        return failures.Count == 0 ? 0 : 1;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"hmmemu explore: {message}");
        Console.Error.WriteLine(Usage);
        return 2;
    }

    /// <summary>One shard's result, as written by <c>--json</c> and read by <c>explore merge</c>.</summary>
    internal sealed record ExploreResult(string Config, int Shard, int Shards, int Cases, string? Failure, SortedDictionary<string, long> Counters);
}
