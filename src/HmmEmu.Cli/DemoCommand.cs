using System.Globalization;
using HmmEmu.Simulation;
using HmmEmu.Testing.Demo;

namespace HmmEmu.Cli;

/// <summary>
/// <c>hmmemu demo</c> (and <c>hmmemu run &lt;workload&gt;</c>, one of its workloads): boots one machine (RAM, a GPU with VRAM, two NICs on a link), runs the showcase workloads
/// (<see cref="DemoWorkloads"/>), checks every result against a CPU computation and prints the summary table (or
/// JSON with <c>--json</c>). Exits 0 only if every workload verified, 1 otherwise, 2 on bad arguments.
/// </summary>
internal static class DemoCommand
{
    internal const string Usage = """
        usage: hmmemu demo [--seed N] [--mode deterministic|threaded] [--json] [--trace FILE] [--help]
          Boots one machine (128 MiB RAM, a GPU with 4 MiB VRAM, two RDMA NICs on a link) and runs: GPU saxpy with
          first-touch faults and after prefetch, CPU/GPU ping-pong, VRAM oversubscription, an RDMA ODP WRITE between two
          processes, and an RDMA WRITE from a buffer in GPU VRAM. Every result is checked against a CPU computation; a
          table shows wall and virtual time, faults, batches, migrations, evictions, TLB hit rate and invalidations.
          --json prints the summary as JSON on stdout (progress goes to stderr). --trace FILE writes the run as
          Chrome/Perfetto trace JSON on the virtual timeline (docs/tracing.md). Exits 1 if a workload is not verified.
        """;

    internal const string RunUsage = """
        usage: hmmemu run <workload> [--seed N] [--mode deterministic|threaded] [--json] [--trace FILE] [--help]
               hmmemu run --list
          Runs one of the demo's workloads on the same machine, with the same checks, summary and options as
          `hmmemu demo`. --list prints the workloads' ids and what each does.
        """;

    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>
    /// Runs <c>demo</c> or <c>run</c> (by <c>args[0]</c>) with its output on <paramref name="stdout"/> and
    /// <paramref name="stderr"/>.
    /// </summary>
    internal static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string command = args[0];
        string usage = command == "run" ? RunUsage : Usage;
        int first = 1;
        List<string>? only = null;
        if (command == "run")
        {
            if (args.Length < 2)
                return Fail(stderr, command, usage, "run needs a workload id, or --list.");
            if (args[1] == "--list")
            {
                if (args.Length > 2)
                    return Fail(stderr, command, usage, "--list takes no other options.");
                foreach (var w in DemoWorkloads.All)
                    stdout.WriteLine($"{w.Id,-16} {w.Title}");
                return 0;
            }
            if (args[1] is "-h" or "--help")
            {
                stdout.WriteLine(usage);
                return 0;
            }
            if (!DemoWorkloads.Ids.Contains(args[1]))
                return Fail(stderr, command, usage, $"no workload '{args[1]}'; `hmmemu run --list` shows them ({string.Join(", ", DemoWorkloads.Ids)}).");
            only = [args[1]];
            first = 2;
        }
        ulong seed = 1;
        var mode = SchedulerMode.Deterministic;
        bool json = false;
        string? tracePath = null;
        for (int i = first; i < args.Length; i++)
        {
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--seed":
                    var s = Value();
                    if (!ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out seed))
                        return Fail(stderr, command, usage, $"--seed needs a non-negative integer, not '{s}'.");
                    break;
                case "--mode":
                    var m = Value();
                    if (m is null || !Enum.TryParse(m, ignoreCase: true, out mode) || !Enum.IsDefined(mode) || char.IsDigit(m[0]))
                        return Fail(stderr, command, usage, $"--mode must be 'deterministic' or 'threaded', not '{m}'.");
                    break;
                case "--json":
                    json = true;
                    break;
                case "--trace":
                    tracePath = Value();
                    if (string.IsNullOrEmpty(tracePath))
                        return Fail(stderr, command, usage, "--trace needs a file name.");
                    break;
                case "-h" or "--help":
                    stdout.WriteLine(usage);
                    return 0;
                default:
                    return Fail(stderr, command, usage, $"unknown option '{args[i]}'.");
            }
        }
        // With --json, stdout carries only the document: progress goes to stderr.
        var progressTo = json ? stderr : stdout;
        var report = DemoRunner.Run(new DemoOptions(seed, mode, TracePath: tracePath, Only: only), line => progressTo.WriteLine(line));
        if (json)
        {
            stdout.WriteLine(report.ToJson());
        }
        else
        {
            stdout.WriteLine();
            stdout.Write(report.FormatTable());
        }
        return report.AllVerified ? 0 : 1;
    }

    private static int Fail(TextWriter stderr, string command, string usage, string message)
    {
        stderr.WriteLine($"hmmemu {command}: {message}");
        stderr.WriteLine(usage);
        return 2;
    }
}
