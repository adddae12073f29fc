using System.Diagnostics;
using System.Globalization;

namespace HmmEmu.Cli;

/// <summary>
/// <c>hmmemu bench</c>: a quick ratio check of the main benchmarks. It runs the BenchmarkDotNet project
/// (<c>tests/HmmEmu.Benchmarks</c>, from the source checkout it is started in) with a short job on the benchmarks that
/// carry a ratio goal, reads BenchmarkDotNet's CSV reports, and prints each goal with the ratio measured against its
/// baseline in the same run. The full runs, their history and the other benchmarks are in docs/benchmarks.md.
/// </summary>
internal static class BenchCommand
{
    internal const string Usage = """
        usage: hmmemu bench [--job short|medium] [--keep DIR] [--list] [--help]
          From a source checkout: runs the main benchmarks that have a ratio goal (BenchmarkDotNet, Release; short = 3
          iterations after 1 warm-up, medium = 10 after 3) and prints each goal with the ratio measured
          against its baseline in the same run. --keep DIR keeps BenchmarkDotNet's reports there. --list prints the goals without running anything.
          Exits 0 when the benchmarks ran (met or not: a ratio is information, not a test), 1 if they could not run.
        """;

    /// <summary>A ratio goal: <c>Method</c> of benchmark class <c>Class</c> (for the parameter value, if any) over its baseline.</summary>
    /// <param name="Class">The benchmark class's name.</param>
    /// <param name="Method">The measured method (its baseline is the class's [Benchmark(Baseline = true)]).</param>
    /// <param name="Parameter">A "Name=Value" parameter the row must have, or null for every row.</param>
    /// <param name="MaxRatio">The goal: the measured time at most this many times the baseline's.</param>
    /// <param name="What">The goal in words, with its issue.</param>
    internal sealed record Goal(string Class, string Method, string? Parameter, double MaxRatio, string What);

    /// <summary>One goal's outcome for one row of the report.</summary>
    internal sealed record Verdict(Goal Goal, string Row, double? Ratio)
    {
        /// <summary>Whether the ratio meets the goal (null: the benchmark did not run or reported no ratio).</summary>
        public bool? Met => Ratio is { } r ? r <= Goal.MaxRatio : null;
    }

    internal static IReadOnlyList<Goal> Goals { get; } =
    [
        new("RangeFaultSnapshotBenchmarks", "RangeFaultSnapshot", null, 3.0, "RangeFault snapshot per page <= 3x a bare page-table walk (issue 2)"),
        new("DmaCopyBenchmarks", "DmaCopy2MiBBatched", "Translator=Bus", 1.25, "DMA copy of 2 MiB >= 0.8x Span.CopyTo's throughput (issue 4)"),
        new("TlbTranslationBenchmarks", "TlbHit", null, 2.0, "TLB-hit translation <= 2x indexing a flat array (issue 4)"),
        new("GpuSaxpyBenchmarks", "GpuSaxpy", "Placement=Vram", 2.0, "GPU saxpy on VRAM >= 0.5x a C# loop's throughput (issue 5)"),
        new("AnalyzerCostBenchmarks", "CompileAndAnalyze", null, 1.25,
            "analyzers + compile <= 1.25x bare compile, in process (issue 7; the goal is met on a real build, see docs/benchmarks.md (i))"),
    ];

    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    internal static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string job = "short";
        string? keep = null;
        for (int i = 1; i < args.Length; i++)
        {
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--job":
                    job = Value() ?? "";
                    if (job is not ("short" or "medium"))
                        return Fail(stderr, $"--job must be 'short' or 'medium', not '{job}'.");
                    break;
                case "--keep":
                    keep = Value();
                    if (string.IsNullOrEmpty(keep))
                        return Fail(stderr, "--keep needs a folder.");
                    break;
                case "--list":
                    foreach (var g in Goals)
                        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{g.Class}.{g.Method}{(g.Parameter is null ? "" : $" ({g.Parameter})")}: ratio <= {g.MaxRatio:0.##}; {g.What}"));
                    return 0;
                case "-h" or "--help":
                    stdout.WriteLine(Usage);
                    return 0;
                default:
                    return Fail(stderr, $"unknown option '{args[i]}'.");
            }
        }

        string? repo = FindRepository(Directory.GetCurrentDirectory());
        if (repo is null)
        {
            stderr.WriteLine("hmmemu bench: no HmmEmu.sln in this folder or above it. bench runs tests/HmmEmu.Benchmarks from a source checkout: run it inside the repository.");
            return 1;
        }
        string artifacts = keep ?? Directory.CreateTempSubdirectory("hmmemu-bench-").FullName;
        try
        {
            var arguments = new List<string> { "run", "-c", "Release", "--project", Path.Combine(repo, "tests", "HmmEmu.Benchmarks"), "--", "--filter" };
            arguments.AddRange(Goals.Select(g => g.Class).Distinct().Select(c => $"*{c}*"));
            // The job's characteristics override every benchmark class's own job, so each case runs once, briefly.
            arguments.AddRange(job switch
            {
                "medium" => ["--iterationCount", "10", "--warmupCount", "3", "--launchCount", "1"],
                _ => ["--iterationCount", "3", "--warmupCount", "1", "--launchCount", "1"],
            });
            arguments.AddRange(["--artifacts", artifacts, "--exporters", "csv"]);
            stderr.WriteLine($"hmmemu bench: dotnet {string.Join(' ', arguments)}");
            int exit = RunDotnet(arguments, stderr);
            if (exit != 0)
            {
                stderr.WriteLine($"hmmemu bench: the benchmark run exited with {exit}.");
                return 1;
            }
            var verdicts = Evaluate(Path.Combine(artifacts, "results"));
            stdout.Write(Format(verdicts, job));
            return 0;
        }
        finally
        {
            if (keep is null)
                Directory.Delete(artifacts, recursive: true);
        }
    }

    /// <summary>Reads the CSV reports in <paramref name="resultsDirectory"/> and judges every goal on every matching row.</summary>
    internal static IReadOnlyList<Verdict> Evaluate(string resultsDirectory)
    {
        var verdicts = new List<Verdict>();
        foreach (var goal in Goals)
        {
            string? report = Directory.Exists(resultsDirectory)
                ? Directory.GetFiles(resultsDirectory, "*-report.csv").Where(f => Path.GetFileName(f).Contains("." + goal.Class + "-", StringComparison.Ordinal)).FirstOrDefault()
                : null;
            var rows = report is null ? [] : ReadCsv(File.ReadAllLines(report));
            var matching = rows.Where(r => r.GetValueOrDefault("Method") == goal.Method && HasParameter(r, goal.Parameter)).ToList();
            if (matching.Count == 0)
            {
                verdicts.Add(new Verdict(goal, "-", null));
                continue;
            }
            foreach (var row in matching)
            {
                double? ratio = double.TryParse(row.GetValueOrDefault("Ratio"), NumberStyles.Float, CultureInfo.InvariantCulture, out double r) ? r : null;
                verdicts.Add(new Verdict(goal, ParameterText(row), ratio));
            }
        }
        return verdicts;
    }

    /// <summary>The verdicts as a table.</summary>
    internal static string Format(IReadOnlyList<Verdict> verdicts, string job)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(c, $"{"benchmark",-44} {"params",-22} {"ratio",7} {"goal",7}  verdict");
        foreach (var v in verdicts)
        {
            string ratio = v.Ratio is { } r ? r.ToString("0.00", c) : "-";
            string verdict = v.Met switch { true => "met", false => "NOT met", null => "did not run" };
            sb.AppendLine(c, $"{v.Goal.Class + "." + v.Goal.Method,-44} {v.Row,-22} {ratio,7} {"<= " + v.Goal.MaxRatio.ToString("0.##", c),7}  {verdict}");
        }
        sb.AppendLine();
        foreach (var g in verdicts.Select(v => v.Goal).Distinct())
            sb.AppendLine(c, $"  {g.Class}.{g.Method}: {g.What}");
        sb.AppendLine(c, $"  ratios against the baseline measured in the same run, BenchmarkDotNet job '{job}'; full runs: docs/benchmarks.md");
        return sb.ToString();
    }

    // BenchmarkDotNet's CSV report: a header line, then one line per benchmark case; fields may be quoted.
    internal static List<Dictionary<string, string>> ReadCsv(IReadOnlyList<string> lines)
    {
        var result = new List<Dictionary<string, string>>();
        if (lines.Count == 0)
            return result;
        var header = SplitCsv(lines[0]);
        foreach (string line in lines.Skip(1).Where(l => l.Length > 0))
        {
            var fields = SplitCsv(line);
            var row = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < header.Count && i < fields.Count; i++)
                row[header[i]] = fields[i];
            result.Add(row);
        }
        return result;
    }

    private static List<string> SplitCsv(string line)
    {
        var fields = new List<string>();
        var current = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char ch = line[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    current.Append('"');
                    i++;
                }
                else if (ch == '"')
                {
                    quoted = false;
                }
                else
                {
                    current.Append(ch);
                }
            }
            else if (ch == '"')
            {
                quoted = true;
            }
            else if (ch == ',')
            {
                fields.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(ch);
            }
        }
        fields.Add(current.ToString());
        return fields;
    }

    private static bool HasParameter(Dictionary<string, string> row, string? parameter)
    {
        if (parameter is null)
            return true;
        int eq = parameter.IndexOf('=', StringComparison.Ordinal);
        return row.GetValueOrDefault(parameter[..eq]) == parameter[(eq + 1)..];
    }

    // The row's benchmark parameters: the columns between BenchmarkDotNet's job columns and its statistics.
    private static string ParameterText(Dictionary<string, string> row)
    {
        var names = row.Keys.ToList();
        int from = names.IndexOf("WarmupCount") + 1;
        int to = names.IndexOf("Mean");
        if (from <= 0 || to < from)
            return "-";
        var parameters = names.Skip(from).Take(to - from).Select(n => $"{n}={row[n]}").ToList();
        return parameters.Count == 0 ? "-" : string.Join(" ", parameters);
    }

    private static int RunDotnet(IReadOnlyList<string> arguments, TextWriter log)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet");
        // BenchmarkDotNet is verbose: keep its summary lines and errors, drop the per-iteration log.
        process.OutputDataReceived += (_, e) => { if (e.Data is { } l && (l.StartsWith("// ***", StringComparison.Ordinal) || l.Contains("error", StringComparison.OrdinalIgnoreCase))) lock (log) log.WriteLine(l); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } l) lock (log) log.WriteLine(l); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.WaitForExit();
        return process.ExitCode;
    }

    private static string? FindRepository(string start)
    {
        for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "HmmEmu.sln")) && Directory.Exists(Path.Combine(d.FullName, "tests", "HmmEmu.Benchmarks")))
                return d.FullName;
        }
        return null;
    }

    private static int Fail(TextWriter stderr, string message)
    {
        stderr.WriteLine($"hmmemu bench: {message}");
        stderr.WriteLine(Usage);
        return 2;
    }
}
