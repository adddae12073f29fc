using System.Globalization;
using HmmEmu.Simulation;
using HmmEmu.Testing.Demo;

namespace HmmEmu.Cli;

/// <summary>
/// <c>hmmemu demo</c>: boots one machine (RAM, a GPU with VRAM, two NICs on a link), runs the showcase workloads
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

    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the command with its output on <paramref name="stdout"/> and <paramref name="stderr"/>.</summary>
    internal static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ulong seed = 1;
        var mode = SchedulerMode.Deterministic;
        bool json = false;
        string? tracePath = null;
        for (int i = 1; i < args.Length; i++)
        {
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--seed":
                    var s = Value();
                    if (!ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out seed))
                        return Fail(stderr, $"--seed needs a non-negative integer, not '{s}'.");
                    break;
                case "--mode":
                    var m = Value();
                    if (m is null || !Enum.TryParse(m, ignoreCase: true, out mode) || !Enum.IsDefined(mode) || char.IsDigit(m[0]))
                        return Fail(stderr, $"--mode must be 'deterministic' or 'threaded', not '{m}'.");
                    break;
                case "--json":
                    json = true;
                    break;
                case "--trace":
                    tracePath = Value();
                    if (string.IsNullOrEmpty(tracePath))
                        return Fail(stderr, "--trace needs a file name.");
                    break;
                case "-h" or "--help":
                    stdout.WriteLine(Usage);
                    return 0;
                default:
                    return Fail(stderr, $"unknown option '{args[i]}'.");
            }
        }
        // With --json, stdout carries only the document: progress goes to stderr.
        var progressTo = json ? stderr : stdout;
        var report = DemoRunner.Run(new DemoOptions(seed, mode, TracePath: tracePath), line => progressTo.WriteLine(line));
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

    private static int Fail(TextWriter stderr, string message)
    {
        stderr.WriteLine($"hmmemu demo: {message}");
        stderr.WriteLine(Usage);
        return 2;
    }
}
