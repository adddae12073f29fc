using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM011UnboundedFaultRetryAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM011UnboundedFaultRetryTests
{
    private const string Helpers = """
        private ulong Now => 0;

        private Errno Commit(HmmRange range) => Errno.Ok;

        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

        """;

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Flag(int location) =>
        Verify.Diagnostic().WithLocation(location)
            .WithMessage("This loop retries Hmm.RangeFault with no bound: under a steady stream of invalidations it never ends; leave it when a deadline passes or an attempt budget runs out (HMM_RANGE_DEFAULT_TIMEOUT)");

    [Fact]
    public async Task WhileTrue_ContinueOnEbusy_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range)
            {
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
            """), Flag(0));
    }

    [Fact]
    public async Task ForEver_CounterNeverTested_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public int Retries;

            public Errno Fault(HmmRange range)
            {
                {|#0:for (int attempt = 0; ; attempt++)|}
                {
                    Retries = attempt;             // counted, never compared
                    range.NotifierSeq = _notifier.ReadBegin();
                    if (Hmm.RangeFault(range) == Errno.EBUSY)
                        continue;
                    return Errno.Ok;
                }
            }
            """), Flag(0));
    }

    [Fact]
    public async Task DoWhile_UntilNotBusy_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range)
            {
                Errno err;
                do
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    err = Hmm.RangeFault(range);
                }
                {|#0:while (err == Errno.EBUSY)|};
                return err;
            }
            """), Flag(0));
    }

    [Fact]
    public async Task WhileTrue_BudgetTestThatDoesNotLeave_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range, ulong deadline)
            {
                bool late = false;
                {|#0:while (true)|}
                {
                    if (Now > deadline)
                        late = true;               // noticed, but the loop goes on
                    range.NotifierSeq = _notifier.ReadBegin();
                    if (Hmm.RangeFault(range) == Errno.EBUSY)
                        continue;
                    return late ? Errno.EBUSY : Errno.Ok;
                }
            }
            """), Flag(0));
    }

    [Fact]
    public async Task WhileTrue_DeadlineReturns_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range, ulong deadline)
            {
                while (true)
                {
                    if (Now > deadline)
                        return Errno.EBUSY;
                    range.NotifierSeq = _notifier.ReadBegin();
                    var err = Hmm.RangeFault(range);
                    if (err == Errno.EBUSY)
                        continue;
                    return err;
                }
            }
            """));
    }

    [Fact]
    public async Task For_AttemptBudgetInCondition_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range)
            {
                for (int attempt = 0; attempt < 16; attempt++)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    if (Hmm.RangeFault(range) != Errno.EBUSY)
                        return Errno.Ok;
                }
                return Errno.EBUSY;
            }
            """));
    }

    [Fact]
    public async Task WhileNotExpired_DeadlineMember_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            private bool DeadlineExpired => false;

            public Errno Fault(HmmRange range)
            {
                while (!DeadlineExpired)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    if (Hmm.RangeFault(range) != Errno.EBUSY)
                        return Errno.Ok;
                }
                return Errno.EBUSY;
            }
            """));
    }

    [Fact]
    public async Task ForEachChunk_AndBoundedInnerRetry_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno FaultAll(HmmRange[] chunks)
            {
                foreach (var range in chunks)
                {
                    Hmm.RangeFault(range);         // one attempt per chunk: foreach is bounded by the chunks
                }
                while (true)                       // no fault inside: not a fault-retry loop
                {
                    if (chunks.Length == 0)
                        break;
                    for (int attempt = 0; ; attempt++)
                    {
                        if (attempt > 3)
                            break;
                        if (Hmm.RangeFault(chunks[0]) != Errno.EBUSY)
                            return Errno.Ok;
                    }
                    return Errno.EBUSY;
                }
                return Errno.Ok;
            }
            """));
    }
}
