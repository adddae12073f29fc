using System.Globalization;
using HmmEmu.Simulation;
using HmmEmu.Simulation.Export;
using HmmEmu.Testing.Selftests;

namespace HmmEmu.Cli;

/// <summary>The hmmemu command line.</summary>
public static class Program
{
    private const string Usage = """
        usage: hmmemu selftest [--seed N] [--mode deterministic|threaded] [--filter TEXT] [--list] [--trace FILE]
          Runs the port of the kernel's HMM selftests (tools/testing/selftests/mm/hmm-tests.c) against the mirror
          device on a simulated machine and prints kselftest TAP. Exits 1 if any test fails, 2 on bad arguments.
          --trace FILE writes the runs as Chrome/Perfetto trace JSON on the virtual timeline (docs/tracing.md).

        """ + ExploreCommand.Usage + "\n\n" + DemoCommand.Usage + "\n\n" + DemoCommand.RunUsage + "\n\n" + BenchCommand.Usage;

    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        if (args[0] == "explore")
            return ExploreCommand.Run(args);
        if (args[0] is "demo" or "run")
            return DemoCommand.Run(args);
        if (args[0] == "bench")
            return BenchCommand.Run(args);
        if (args[0] != "selftest")
        {
            Console.Error.WriteLine($"hmmemu: unknown command '{args[0]}'.");
            Console.Error.WriteLine(Usage);
            return 2;
        }
        ulong seed = 1;
        var mode = SchedulerMode.Deterministic;
        string? filter = null;
        bool list = false;
        string? tracePath = null;
        for (int i = 1; i < args.Length; i++)
        {
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--seed":
                    if (!ulong.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out seed))
                        return Fail("--seed needs a non-negative integer.");
                    break;
                case "--mode":
                    var m = Value();
                    if (!Enum.TryParse(m, ignoreCase: true, out mode) || !Enum.IsDefined(mode))
                        return Fail($"--mode must be 'deterministic' or 'threaded', not '{m}'.");
                    break;
                case "--filter":
                    filter = Value() ?? "";
                    break;
                case "-h" or "--help":
                    Console.WriteLine(Usage);
                    return 0;
                case "--list":
                    list = true;
                    break;
                case "--trace":
                    tracePath = Value();
                    if (string.IsNullOrEmpty(tracePath))
                        return Fail("--trace needs a file name.");
                    break;
                default:
                    return Fail($"unknown option '{args[i]}'.");
            }
        }
        var tests = HmmSelftests.All.Where(t => filter is null || t.FullName.Contains(filter, StringComparison.Ordinal)).ToList();
        if (list)
        {
            foreach (var t in tests)
                Console.WriteLine(t.FullName);
            return 0;
        }
        if (tests.Count == 0)
            return Fail($"no test matches '{filter}'.");
        using var trace = tracePath is null ? null : ChromeTrace.Create(tracePath);
        int failures = SelftestRunner.RunAll(tests, Console.Out, seed, mode, trace);
        return failures == 0 ? 0 : 1;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"hmmemu: {message}");
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
