using HmmEmu.Kernel;
using HmmEmu.Kernel.Migration;
using HmmEmu.Mirror;
using HmmEmu.Simulation;
using HmmEmu.Simulation.Export;

namespace HmmEmu.Testing.Selftests;

/// <summary>
/// Runs ported selftest cases the way the kselftest harness does: each on a fresh machine (kernel, two mirror
/// devices, one test process), setup opens the fixture's devices, teardown closes them; results print as TAP.
/// </summary>
public static class SelftestRunner
{
    /// <summary>
    /// Runs one case on a fresh machine with <paramref name="seed"/> and <paramref name="mode"/>; with a
    /// <paramref name="trace"/>, the run is recorded into it, labelled with the case's name.
    /// </summary>
    public static SelftestResult Run(HmmSelftest test, ulong seed = 1, SchedulerMode mode = SchedulerMode.Deterministic, ChromeTraceWriter? trace = null)
    {
        ArgumentNullException.ThrowIfNull(test);
        if (test.SkipReason is not null)
            return new SelftestResult(test, SelftestOutcome.Skip, test.SkipReason, 0, 0);
        using var kernel = new HostKernel(KernelOptions.For(seed, mode));
        // /dev/hmm_dmirror0..3: two device-private and two device-coherent devices, as test_hmm with spm_addr set.
        var devices = new[]
        {
            new MirrorDevice(kernel, 0), new MirrorDevice(kernel, 1),
            new MirrorDevice(kernel, 2, MemoryType.DeviceCoherent), new MirrorDevice(kernel, 3, MemoryType.DeviceCoherent),
        };
        var process = kernel.CreateProcess("hmm-tests");
        string? failure = null;
        trace?.Attach(kernel.Scheduler, test.FullName);
        try
        {
            kernel.Run(() =>
            {
                var main = process.StartThread("main", () =>
                {
                    var ctx = new SelftestContext(kernel, process, devices, kernel.CreateRandom("hmm-tests"));
                    int first = test.Variant.EndsWith("_coherent", StringComparison.Ordinal) ? 2 : 0;
                    ctx.DeviceNumber = first;
                    ctx.Fd = ctx.Open(first);
                    if (test.Fixture == "hmm2")
                        ctx.Fd1 = ctx.Open(first + 1);
                    test.Body(ctx);
                    ctx.Fd.Close();
                    ctx.Fd1?.Close();
                    process.Exit();
                });
                main.Join();
            });
        }
        catch (SelftestFailureException e)
        {
            failure = e.Message;
        }
        catch (Exception e) when (e is KernelRuleViolationException or KernelBugException or SegmentationFaultException or InvalidOperationException or SimulationDeadlockException)
        {
            failure = $"{e.GetType().Name}: {e.Message}";
        }
        finally
        {
            trace?.Detach();
        }
        if (failure is null && kernel.Warnings.Count > 0)
            failure = $"kernel warning: {kernel.Warnings[0]}";
        failure ??= LeakCheck(kernel, devices);
        return new SelftestResult(test, failure is null ? SelftestOutcome.Pass : SelftestOutcome.Fail, failure, kernel.Trace.Hash, kernel.Clock.Now);
    }

    /// <summary>
    /// After teardown every device page must be free again and every RAM page in use must be a page-cache page of a
    /// regular file (the tests' files outlive the process, as they do on Linux until closed).
    /// </summary>
    private static string? LeakCheck(HostKernel kernel, IReadOnlyList<MirrorDevice> devices)
    {
        foreach (var d in devices)
        {
            if (d.FreeDevicePages != d.Capacity)
                return $"leak: {d.Capacity - d.FreeDevicePages} device page(s) of {d} still allocated after teardown";
        }
        var mem = kernel.Memory;
        if (mem.UsedPages != (ulong)mem.LruPages)
            return $"leak: {mem.UsedPages} RAM page(s) in use after teardown, but only {mem.LruPages} are file cache";
        return null;
    }

    /// <summary>
    /// Runs <paramref name="tests"/> and writes kselftest TAP to <paramref name="output"/>. Returns the number of failures.
    /// </summary>
    /// <remarks>With a <paramref name="trace"/>, every case is recorded into it, one after another on its timeline.</remarks>
    public static int RunAll(IReadOnlyList<HmmSelftest> tests, TextWriter output, ulong seed = 1, SchedulerMode mode = SchedulerMode.Deterministic, ChromeTraceWriter? trace = null)
    {
        ArgumentNullException.ThrowIfNull(tests);
        ArgumentNullException.ThrowIfNull(output);
        void W(FormattableString line) => output.WriteLine(FormattableString.Invariant(line));
        output.WriteLine("TAP version 13");
        W($"1..{tests.Count}");
        W($"# Starting {tests.Count} tests from {tests.Select(t => t.Fixture + "." + t.Variant).Distinct().Count()} test cases (seed {seed}, {mode} mode).");
        int pass = 0, fail = 0, skip = 0;
        for (int i = 0; i < tests.Count; i++)
        {
            var t = tests[i];
            W($"#  RUN           {t.FullName} ...");
            var r = Run(t, seed, mode, trace);
            switch (r.Outcome)
            {
                case SelftestOutcome.Pass:
                    pass++;
                    W($"#            OK  {t.FullName}");
                    W($"ok {i + 1} {t.FullName}");
                    break;
                case SelftestOutcome.Skip:
                    skip++;
                    W($"#      SKIP      {r.Message}");
                    W($"#            OK  {t.FullName}");
                    W($"ok {i + 1} {t.FullName} # SKIP {r.Message}");
                    break;
                default:
                    fail++;
                    W($"# {r.Message}");
                    W($"#          FAIL  {t.FullName}");
                    W($"not ok {i + 1} {t.FullName}");
                    break;
            }
        }
        W($"# {(fail == 0 ? "PASSED" : "FAILED")}: {pass + skip} / {tests.Count} tests passed.");
        W($"# Totals: pass:{pass} fail:{fail} xfail:0 xpass:0 skip:{skip} error:0");
        return fail;
    }
}
