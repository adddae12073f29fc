using System.Text.Json;
using HmmEmu.Testing.Demo;

namespace HmmEmu.Cli.Tests;

public sealed class DemoCommandTests
{
    [Fact]
    public void Run_Json_PrintsOnlyAParsableSummaryOnStdout()
    {
        var (code, stdout, stderr) = Run("demo", "--json", "--seed", "2");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal(2UL, root.GetProperty("seed").GetUInt64());
        Assert.Equal("Deterministic", root.GetProperty("mode").GetString());
        Assert.True(root.GetProperty("allVerified").GetBoolean());
        var rows = root.GetProperty("workloads").EnumerateArray().ToList();
        Assert.Equal(DemoWorkloads.Ids, rows.Select(r => r.GetProperty("id").GetString()));
        Assert.All(rows, r => Assert.True(r.GetProperty("virtualNs").GetUInt64() > 0));
        Assert.Equal(JsonValueKind.Null, rows.Single(r => r.GetProperty("id").GetString() == "rdma-odp-write").GetProperty("faultBatches").ValueKind);
        Assert.Contains("[6/6]", stderr, StringComparison.Ordinal);       // progress goes to stderr with --json
    }

    [Fact]
    public void Run_Trace_WritesATraceTheStructureCheckAcceptsWithTheDemosSlicesAndCounters()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hmmemu-demo-{Guid.NewGuid():N}.json");
        try
        {
            var (code, _, _) = Run("demo", "--json", "--trace", path);

            Assert.Equal(0, code);
            var summary = HmmEmu.Simulation.Tests.ChromeTraceAssert.Valid(File.ReadAllBytes(path));
            foreach (string slice in new[] { "gpu.kernel", "gpu.fault_batch", "mmu_notifier.invalidate", "dma.transfer", "migrate.migrate_vma" })
                Assert.True(summary.Slices.GetValueOrDefault(slice) > 0, $"no '{slice}' slice");
            Assert.True(summary.Counters.GetValueOrDefault("gpu.vram") > 0, "no VRAM counter");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Run_Json_SplitsVirtualTimeIntoKernelFaultAndDmaSpans()
    {
        var (code, stdout, _) = Run("demo", "--json");

        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        var rows = doc.RootElement.GetProperty("workloads").EnumerateArray().ToDictionary(r => r.GetProperty("id").GetString()!);
        // First-touch saxpy: the kernel ran, its faults were handled in batches that migrated by DMA.
        var fault = rows["saxpy-fault"];
        Assert.True(fault.GetProperty("gpuKernelNs").GetUInt64() > 0);
        Assert.True(fault.GetProperty("gpuFaultBatchNs").GetUInt64() > 0);
        Assert.True(fault.GetProperty("dmaTransferNs").GetUInt64() > 0);
        // Each part lies within the workload's virtual time; the RDMA-only workload runs no GPU kernel.
        foreach (var r in rows.Values)
        {
            ulong total = r.GetProperty("virtualNs").GetUInt64();
            Assert.True(r.GetProperty("gpuFaultBatchNs").GetUInt64() <= total, r.GetProperty("id").GetString());
        }
        Assert.Equal(0UL, rows["rdma-odp-write"].GetProperty("gpuKernelNs").GetUInt64());
        Assert.Equal(0UL, rows["saxpy-prefetch"].GetProperty("gpuFaultBatchNs").GetUInt64());
    }

    [Fact]
    public void Run_Default_PrintsProgressAndTheTable()
    {
        var (code, stdout, _) = Run("demo");
        Assert.Equal(0, code);
        Assert.Contains("[1/6] saxpy-fault", stdout, StringComparison.Ordinal);
        Assert.Contains("workload ", stdout, StringComparison.Ordinal);
        Assert.Contains("every workload verified against the CPU", stdout, StringComparison.Ordinal);
        Assert.Equal(DemoWorkloads.Ids.Count, stdout.Split('\n').Count(l => l.TrimEnd().EndsWith("  verified", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("--seed", "x", "--seed needs a non-negative integer")]
    [InlineData("--seed", "-1", "--seed needs a non-negative integer")]
    [InlineData("--mode", "fast", "--mode must be 'deterministic' or 'threaded'")]
    [InlineData("--mode", "1", "--mode must be 'deterministic' or 'threaded'")]
    [InlineData("--frobnicate", null, "unknown option '--frobnicate'")]
    [InlineData("--seed", null, "--seed needs a non-negative integer")]
    [InlineData("--trace", null, "--trace needs a file name")]
    public void Run_BadOption_ExitCode2WithMessage(string option, string? value, string message)
    {
        var (code, stdout, stderr) = Run(value is null ? ["demo", option] : ["demo", option, value]);
        Assert.Equal(2, code);
        Assert.Contains("hmmemu demo: " + message, stderr, StringComparison.Ordinal);
        Assert.Contains("usage: hmmemu demo", stderr, StringComparison.Ordinal);
        Assert.Empty(stdout);
    }

    [Fact]
    public void Run_Help_PrintsUsageAndExits0()
    {
        var (code, stdout, _) = Run("demo", "--help");
        Assert.Equal(0, code);
        Assert.Contains("usage: hmmemu demo", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Main_Usage_ListsDemo()
    {
        var saved = Console.Out;
        using var sw = new StringWriter();
        Console.SetOut(sw);
        try
        {
            Assert.Equal(0, Program.Main(["--help"]));
        }
        finally
        {
            Console.SetOut(saved);
        }
        Assert.Contains("usage: hmmemu demo", sw.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("selftest", "usage: hmmemu selftest")]
    [InlineData("explore", "usage: hmmemu explore")]
    [InlineData("demo", "usage: hmmemu demo")]
    [InlineData("run", "usage: hmmemu run <workload>")]
    [InlineData("bench", "usage: hmmemu bench")]
    public void Main_CommandHelp_PrintsItsUsageAndExits0(string command, string usage)
    {
        var saved = Console.Out;
        using var sw = new StringWriter();
        Console.SetOut(sw);
        int code;
        try
        {
            code = Program.Main([command, "--help"]);
        }
        finally
        {
            Console.SetOut(saved);
        }
        Assert.Equal(0, code);
        Assert.Contains(usage, sw.ToString(), StringComparison.Ordinal);
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = DemoCommand.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
