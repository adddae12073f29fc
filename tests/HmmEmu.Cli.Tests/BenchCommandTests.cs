namespace HmmEmu.Cli.Tests;

// `hmmemu bench`: the goals it checks and how it judges BenchmarkDotNet's CSV reports. The benchmarks themselves are
// not run here (minutes, and timing belongs in benchmarks, not tests); docs/benchmarks.md has a real run.
public sealed class BenchCommandTests : IDisposable
{
    private readonly string _results = Directory.CreateTempSubdirectory("hmmemu-bench-test-").FullName;

    private const string Header =
        "Method,Job,AnalyzeLaunchVariance,WarmupCount,Translator,Mean,Error,StdDev,Ratio,RatioSD";

    public void Dispose() => Directory.Delete(_results, recursive: true);

    [Fact]
    public void Evaluate_DmaReport_JudgesOnlyTheBusRowOfTheBatchedCopyAgainstItsGoal()
    {
        File.WriteAllLines(Path.Combine(_results, "HmmEmu.Benchmarks.Hardware.DmaCopyBenchmarks-report.csv"),
        [
            Header,
            "SpanCopyTo,Job-A,False,3,Bus,52.25 us,1 us,1 us,1.00,0.01",
            "DmaCopy2MiBBatched,Job-A,False,3,Bus,54.60 us,1 us,1 us,1.05,0.02",
            "DmaCopy2MiBBatched,Job-A,False,3,Mmu,84.91 us,1 us,1 us,1.47,0.02",
        ]);

        var dma = BenchCommand.Evaluate(_results).Where(v => v.Goal.Class == "DmaCopyBenchmarks").ToList();

        var only = Assert.Single(dma);
        Assert.Equal(1.05, only.Ratio);
        Assert.True(only.Met);
        Assert.Equal("Translator=Bus", only.Row);
    }

    [Fact]
    public void Evaluate_RatioAboveTheGoal_IsNotMet_AndEveryParameterRowIsJudged()
    {
        File.WriteAllLines(Path.Combine(_results, "HmmEmu.Benchmarks.Hardware.TlbTranslationBenchmarks-report.csv"),
        [
            "Method,Job,WarmupCount,Pages,Mean,Ratio",
            "FlatArray,Job-A,3,64,1.474 ns,1.00",
            "TlbHit,Job-A,3,64,6.040 ns,4.10",
            "TlbHit,Job-A,3,128,\"2,950.0 ns\",1.90",
        ]);

        var tlb = BenchCommand.Evaluate(_results).Where(v => v.Goal.Class == "TlbTranslationBenchmarks").ToList();

        Assert.Equal([false, true], tlb.Select(v => v.Met));
        Assert.Equal(["Pages=64", "Pages=128"], tlb.Select(v => v.Row));
    }

    [Fact]
    public void Evaluate_NoReport_EveryGoalDidNotRun()
    {
        var verdicts = BenchCommand.Evaluate(_results);

        Assert.Equal(BenchCommand.Goals.Count, verdicts.Count);
        Assert.All(verdicts, v => Assert.Null(v.Met));
        Assert.Contains("did not run", BenchCommand.Format(verdicts, "short"), StringComparison.Ordinal);
    }

    [Fact]
    public void List_PrintsEveryGoalWithoutRunningAnything()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        Assert.Equal(0, BenchCommand.Run(["bench", "--list"], stdout, stderr));

        Assert.Equal(BenchCommand.Goals.Count, stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Empty(stderr.ToString());
    }

    [Theory]
    [InlineData("--job", "long", "--job must be 'short' or 'medium'")]
    [InlineData("--keep", null, "--keep needs a folder")]
    [InlineData("--fast", null, "unknown option '--fast'")]
    public void Run_BadOption_ExitCode2WithMessage(string option, string? value, string message)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        string[] args = value is null ? ["bench", option] : ["bench", option, value];

        Assert.Equal(2, BenchCommand.Run(args, stdout, stderr));
        Assert.Contains("hmmemu bench: " + message, stderr.ToString(), StringComparison.Ordinal);
    }
}
