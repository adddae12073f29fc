using Fix = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM011UnboundedFaultRetryAnalyzer, HmmEmu.Analyzers.CodeFixes.HMM011AddDeadlineCodeFix>;

namespace HmmEmu.Analyzers.Tests;

public class HMM011CodeFixTests
{
    private const string Helpers = """
        private Errno Commit(HmmRange range) => Errno.Ok;

        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

        """;

    // The constant the fix adds when the driver has no timeout of its own, first in the class.
    private const string AddedConstant = "private const ulong RangeTimeoutNs = 1_000_000_000;   // HMM_RANGE_DEFAULT_TIMEOUT: 1000 ms\n";

    private static string WithAddedConstant(string source) =>
        source.Replace("{\n    private readonly KMutex _lock;", "{\n    " + AddedConstant + "    private readonly KMutex _lock;", StringComparison.Ordinal);

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Flag(int location) =>
        Fix.Diagnostic(HMM011UnboundedFaultRetryAnalyzer.Descriptor).WithLocation(location);

    [Fact]
    public async Task WhileTrue_UsesTheDriversTimeout_ChecksFirstInTheBody()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Helpers + """
                private const ulong RangeTimeoutNs = 500_000_000;

                public Errno Fault(HmmRange range)
                {
                    // fault, then commit under the lock
                    {|#0:while (true)|}
                    {
                        range.NotifierSeq = _notifier.ReadBegin();
                        var err = Hmm.RangeFault(range);
                        if (err == Errno.EBUSY)
                            continue;
                        if (err != Errno.Ok)
                            return err;
                        using (_lock.Scoped())
                        {
                            if (_notifier.ReadRetry(range.NotifierSeq))
                                continue;
                            return Commit(range);
                        }
                    }
                }
                """),
            [Flag(0)],
            Driver.Wrap(Helpers + """
                private const ulong RangeTimeoutNs = 500_000_000;

                public Errno Fault(HmmRange range)
                {
                    ulong deadline = _kernel.Clock.Now + RangeTimeoutNs;
                    // fault, then commit under the lock
                    while (true)
                    {
                        if (_kernel.Clock.Now > deadline)
                            return Errno.EBUSY;
                        range.NotifierSeq = _notifier.ReadBegin();
                        var err = Hmm.RangeFault(range);
                        if (err == Errno.EBUSY)
                            continue;
                        if (err != Errno.Ok)
                            return err;
                        using (_lock.Scoped())
                        {
                            if (_notifier.ReadRetry(range.NotifierSeq))
                                continue;
                            return Commit(range);
                        }
                    }
                }
                """));
    }

    [Fact]
    public async Task NoTimeoutInScope_AddsTheKernelDefault_AndFixAllNamesEachDeadline()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Helpers + """
                public Errno Fault(HmmRange a, HmmRange b)
                {
                    {|#0:for (int attempt = 0; ; attempt++)|}
                    {
                        a.NotifierSeq = _notifier.ReadBegin();
                        if (Hmm.RangeFault(a) != Errno.EBUSY)
                            break;
                    }
                    Errno err;
                    do
                    {
                        b.NotifierSeq = _notifier.ReadBegin();
                        err = Hmm.RangeFault(b);
                    }
                    {|#1:while (err == Errno.EBUSY)|};
                    return err;
                }
                """),
            [Flag(0), Flag(1)],
            WithAddedConstant(Driver.Wrap(Helpers + """
                public Errno Fault(HmmRange a, HmmRange b)
                {
                    ulong deadline = _kernel.Clock.Now + RangeTimeoutNs;
                    for (int attempt = 0; ; attempt++)
                    {
                        if (_kernel.Clock.Now > deadline)
                            return Errno.EBUSY;
                        a.NotifierSeq = _notifier.ReadBegin();
                        if (Hmm.RangeFault(a) != Errno.EBUSY)
                            break;
                    }
                    Errno err;
                    ulong faultDeadline = _kernel.Clock.Now + RangeTimeoutNs;
                    do
                    {
                        if (_kernel.Clock.Now > faultDeadline)
                            return Errno.EBUSY;
                        b.NotifierSeq = _notifier.ReadBegin();
                        err = Hmm.RangeFault(b);
                    }
                    while (err == Errno.EBUSY);
                    return err;
                }
                """)));
    }

    [Fact]
    public async Task SchedulerParameterInAStaticHelper_IsTheClock()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Helpers + """
                private static Errno Fault(HmmEmu.Simulation.Scheduler scheduler, MmuIntervalNotifier notifier, HmmRange range)
                {
                    {|#0:while (true)|}
                    {
                        range.NotifierSeq = notifier.ReadBegin();
                        if (Hmm.RangeFault(range) == Errno.EBUSY)
                            continue;
                        return Errno.Ok;
                    }
                }
                """),
            [Flag(0)],
            WithAddedConstant(Driver.Wrap(Helpers + """
                private static Errno Fault(HmmEmu.Simulation.Scheduler scheduler, MmuIntervalNotifier notifier, HmmRange range)
                {
                    ulong deadline = scheduler.Clock.Now + RangeTimeoutNs;
                    while (true)
                    {
                        if (scheduler.Clock.Now > deadline)
                            return Errno.EBUSY;
                        range.NotifierSeq = notifier.ReadBegin();
                        if (Hmm.RangeFault(range) == Errno.EBUSY)
                            continue;
                        return Errno.Ok;
                    }
                }
                """)));
    }

    [Fact]
    public async Task NotErrno_OrNoClockInScope_IsNotOffered()
    {
        // Fault returns bool: EBUSY has no place to go. Static: _kernel is out of reach and no clock is passed in.
        var source = Driver.Wrap(Helpers + """
            public bool Fault(HmmRange range)
            {
                {|#0:while (true)|}
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    if (Hmm.RangeFault(range) == Errno.Ok)
                        return true;
                }
            }

            private static Errno FaultStatic(MmuIntervalNotifier notifier, HmmRange range)
            {
                {|#1:while (true)|}
                {
                    range.NotifierSeq = notifier.ReadBegin();
                    if (Hmm.RangeFault(range) == Errno.Ok)
                        return Errno.Ok;
                }
            }
            """);
        await Fix.CodeFixAsync(source, [Flag(0), Flag(1)], source, [Flag(0), Flag(1)]);
    }
}
