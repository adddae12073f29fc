using HmmEmu.Testing.Demo;

namespace HmmEmu.Cli.Tests;

// Each workload's verifier: the real run verifies, and one element of its result overwritten in simulated memory
// (DemoOptions.Tamper) is caught by that workload's verifier and by no other.
public sealed class DemoWorkloadTests
{
    public static TheoryData<string> Ids => [.. DemoWorkloads.Ids];

    [Fact]
    public void Run_DefaultSeed_EveryWorkloadVerified()
    {
        var report = DemoRunner.Run(DemoOptions.Default);
        Assert.Equal(DemoWorkloads.Ids, report.Rows.Select(r => r.Id));
        Assert.All(report.Rows, r => Assert.True(r.Verified, $"{r.Id}: {r.Detail}"));
        Assert.True(report.AllVerified);
    }

    [Theory]
    [MemberData(nameof(Ids))]
    public void Run_OneResultElementCorrupted_ThatWorkloadIsNotVerified(string id)
    {
        var report = DemoRunner.Run(DemoOptions.Default with { Tamper = id });
        var row = Assert.Single(report.Rows, r => r.Id == id);
        Assert.False(row.Verified, $"{id}: the corrupted element went unnoticed: {row.Detail}");
        // The tamper hook overwrites bytes 8..11 (float element 2) with -12345.5f.
        Assert.Matches(id is "rdma-odp-write" or "nic-reads-vram" ? "^B's byte (8|9|10|11) " : "element 2 is -12345.5,", row.Detail);
        Assert.All(report.Rows.Where(r => r.Id != id), r => Assert.True(r.Verified, $"{r.Id}: {r.Detail}"));
        Assert.False(report.AllVerified);
    }

    [Fact]
    public void Run_UnknownTamperId_Throws() =>
        Assert.Throws<ArgumentException>(() => DemoRunner.Run(DemoOptions.Default with { Tamper = "nope" }));

    [Fact]
    public void Run_SameSeedTwice_SameCountersVirtualTimesAndTraceHash()
    {
        var a = DemoRunner.Run(new DemoOptions(Seed: 7));
        var b = DemoRunner.Run(new DemoOptions(Seed: 7));
        Assert.Equal(a.TraceHash, b.TraceHash);
        Assert.Equal(a.Rows.Select(r => (r.Id, r.Verified, r.Detail, r.Counters)), b.Rows.Select(r => (r.Id, r.Verified, r.Detail, r.Counters)));
        Assert.All(a.Rows, r => Assert.True(r.Counters.VirtualNs > 0, r.Id));
    }
}
