using System.Text.Json;
using HmmEmu.Testing.Demo;

namespace HmmEmu.Cli.Tests;

// `hmmemu run <workload>`: one demo workload on the demo's machine, with the demo's options and checks.
public sealed class RunCommandTests
{
    [Fact]
    public void RunList_PrintsEveryWorkloadIdWithItsTitle()
    {
        var (code, stdout, _) = Run("run", "--list");

        Assert.Equal(0, code);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(DemoWorkloads.Ids, lines.Select(l => l.Split(' ')[0]));
        Assert.All(DemoWorkloads.All, w => Assert.Contains(w.Title, stdout, StringComparison.Ordinal));
    }

    [Fact]
    public void Run_OneWorkload_RunsOnlyThatOneAndVerifiesIt()
    {
        var (code, stdout, _) = Run("run", "ping-pong", "--json", "--seed", "3");

        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        var rows = doc.RootElement.GetProperty("workloads").EnumerateArray().ToList();
        var row = Assert.Single(rows);
        Assert.Equal("ping-pong", row.GetProperty("id").GetString());
        Assert.True(row.GetProperty("verified").GetBoolean());
        Assert.Equal(3UL, doc.RootElement.GetProperty("seed").GetUInt64());
    }

    [Fact]
    public void Run_SameWorkloadSameSeed_SameCountersAndVirtualTime()
    {
        static string Numbers(string json)
        {
            using var doc = JsonDocument.Parse(json);
            var row = doc.RootElement.GetProperty("workloads")[0];
            return string.Join(",", new[] { "virtualNs", "gpuKernelNs", "gpuFaultBatchNs", "dmaTransferNs", "deviceFaults", "mmFaults", "invalidations" }
                .Select(n => row.GetProperty(n).GetRawText())) + doc.RootElement.GetProperty("traceHash").GetString();
        }

        var first = Run("run", "saxpy-fault", "--json");
        var second = Run("run", "saxpy-fault", "--json");

        Assert.Equal(Numbers(first.Stdout), Numbers(second.Stdout));
    }

    [Theory]
    [InlineData(new[] { "run" }, "run needs a workload id, or --list")]
    [InlineData(new[] { "run", "saxpy" }, "no workload 'saxpy'")]
    [InlineData(new[] { "run", "--list", "--json" }, "--list takes no other options")]
    [InlineData(new[] { "run", "ping-pong", "--seed", "x" }, "--seed needs a non-negative integer")]
    public void Run_BadArguments_ExitCode2WithMessageAndUsage(string[] args, string message)
    {
        var (code, _, stderr) = Run(args);

        Assert.Equal(2, code);
        Assert.Contains("hmmemu run: " + message, stderr, StringComparison.Ordinal);
        Assert.Contains("usage: hmmemu run <workload>", stderr, StringComparison.Ordinal);
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = DemoCommand.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
