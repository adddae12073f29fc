using HmmEmu.Simulation;
using HmmEmu.Testing.Selftests;

namespace HmmEmu.Conformance.Tests;

// The kernel's HMM selftests (ported) must pass against the mirror driver on the simulated kernel.
public sealed class HmmSelftestConformanceTests
{
    public static TheoryData<string> RunnableCases()
    {
        var data = new TheoryData<string>();
        foreach (var t in HmmSelftests.All.Where(t => t.SkipReason is null))
            data.Add(t.FullName);
        return data;
    }

    private static HmmSelftest Find(string name) => HmmSelftests.All.Single(t => t.FullName == name);

    [Theory]
    [MemberData(nameof(RunnableCases))]
    public void Selftest_Deterministic_Passes(string name)
    {
        var r = SelftestRunner.Run(Find(name), seed: 1);
        Assert.True(r.Outcome == SelftestOutcome.Pass, $"{name} failed with seed 1: {r.Message}");
    }

    [Theory]
    [MemberData(nameof(RunnableCases))]
    public void Selftest_Threaded_Passes(string name)
    {
        var r = SelftestRunner.Run(Find(name), seed: 1, SchedulerMode.Threaded);
        Assert.True(r.Outcome == SelftestOutcome.Pass, $"{name} failed in threaded mode: {r.Message}");
    }

    [Fact]
    public void Selftests_SameSeedTwice_SameTraceHash()
    {
        foreach (var name in new[] { "hmm.hmm_device_private.anon_teardown", "hmm.hmm_device_private.anon_write_child" })
        {
            var a = SelftestRunner.Run(Find(name), seed: 42);
            var b = SelftestRunner.Run(Find(name), seed: 42);
            Assert.Equal(SelftestOutcome.Pass, a.Outcome);
            Assert.NotEqual(0UL, a.TraceHash);
            Assert.Equal(a.TraceHash, b.TraceHash);
            Assert.Equal(a.VirtualNs, b.VirtualNs);
        }
    }

    [Fact]
    public void AnonTeardown_DifferentSeeds_ExploreDifferentInterleavings()
    {
        var test = Find("hmm.hmm_device_private.anon_teardown");
        var hashes = new HashSet<ulong>();
        for (ulong seed = 1; seed <= 6; seed++)
        {
            var r = SelftestRunner.Run(test, seed);
            Assert.True(r.Outcome == SelftestOutcome.Pass, $"seed {seed}: {r.Message}");
            hashes.Add(r.TraceHash);
        }
        Assert.True(hashes.Count > 1, "every seed produced the same trace: the scheduler is not exploring interleavings");
    }

    [Fact]
    public void AnonTeardown_ThreadedConcurrentMunmap_PassesManyTimes()
    {
        var test = Find("hmm.hmm_device_private.anon_teardown");
        for (ulong run = 1; run <= 25; run++)
        {
            var r = SelftestRunner.Run(test, run, SchedulerMode.Threaded);
            Assert.True(r.Outcome == SelftestOutcome.Pass, $"threaded run {run}: {r.Message}");
        }
    }

    [Fact]
    public void RunAll_PrintsKselftestTap()
    {
        var tests = HmmSelftests.All.Where(t => t.Name is "open_close" or "anon_read").ToList();
        using var w = new StringWriter();
        int failures = SelftestRunner.RunAll(tests, w);
        var lines = w.ToString().Split('\n', StringSplitOptions.TrimEntries);
        Assert.Equal(0, failures);
        Assert.Equal("TAP version 13", lines[0]);
        Assert.Equal($"1..{tests.Count}", lines[1]);
        Assert.Contains("ok 1 hmm.hmm_device_private.open_close", lines);
        Assert.Contains(lines, l => l.StartsWith("ok ", StringComparison.Ordinal) && l.EndsWith(" hmm.hmm_device_coherent.anon_read", StringComparison.Ordinal));
        Assert.Contains("# Totals: pass:4 fail:0 xfail:0 xpass:0 skip:0 error:0", lines);
    }

    [Fact]
    public void RunAll_SkippedCase_PrintsOkWithSkipDirective()
    {
        var skipped = new HmmSelftest("hmm", "hmm_device_private", "needs_missing_feature", _ => { }, "feature not available");
        using var w = new StringWriter();
        int failures = SelftestRunner.RunAll([skipped], w);
        Assert.Equal(0, failures);
        Assert.Contains("ok 1 hmm.hmm_device_private.needs_missing_feature # SKIP feature not available", w.ToString(), StringComparison.Ordinal);
        Assert.Contains("skip:1", w.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AllCases_NoneSkipped()
    {
        Assert.DoesNotContain(HmmSelftests.All, t => t.SkipReason is not null);
    }

    [Fact]
    public void RunAll_FailingCase_PrintsNotOkAndCountsIt()
    {
        var broken = new HmmSelftest("hmm", "hmm_device_private", "deliberately_failing",
            _ => SelftestContext.AssertEq(0, 1, "ret"));
        using var w = new StringWriter();
        int failures = SelftestRunner.RunAll([broken], w);
        Assert.Equal(1, failures);
        Assert.Contains("not ok 1 hmm.hmm_device_private.deliberately_failing", w.ToString(), StringComparison.Ordinal);
        Assert.Contains("ASSERT_EQ(ret, 0) failed: value is 1", w.ToString(), StringComparison.Ordinal);
    }
}
