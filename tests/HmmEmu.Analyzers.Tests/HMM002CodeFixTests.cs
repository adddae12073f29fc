using Fix = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM002CommitWithoutRetryCheckAnalyzer, HmmEmu.Analyzers.CodeFixes.HMM002InsertReadRetryCodeFix>;

namespace HmmEmu.Analyzers.Tests;

public class HMM002CodeFixTests
{
    private const string Helpers = """
        private readonly ulong[] _table = new ulong[512];

        private Errno Commit(HmmRange range)
        {
            for (int i = 0; i < range.PageCount; i++)
                _table[i] = range.HmmPfns[i];
            return Errno.Ok;
        }

        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

        """;

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Flag(int location) =>
        Fix.Diagnostic(HMM002CommitWithoutRetryCheckAnalyzer.Descriptor).WithLocation(location)
            .WithArguments("'TestDriver.Commit'", "the notifier update lock");

    [Fact]
    public async Task LockThenTryFinally_InsertsCheckBeforeTheCommit_ContinueReleasesThroughTheFinally()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Helpers + """
                public Errno Fault(HmmRange range)
                {
                    while (true)
                    {
                        range.NotifierSeq = _notifier.ReadBegin();
                        var err = Hmm.RangeFault(range);
                        if (err == Errno.EBUSY)
                            continue;
                        if (err != Errno.Ok)
                            return err;
                        _lock.Lock();
                        try
                        {
                            Zap(range.Start, range.End);
                            return {|#0:Commit(range)|};
                        }
                        finally
                        {
                            _lock.Unlock();
                        }
                    }
                }
                """),
            [Flag(0)],
            Driver.Wrap(Helpers + """
                public Errno Fault(HmmRange range)
                {
                    while (true)
                    {
                        range.NotifierSeq = _notifier.ReadBegin();
                        var err = Hmm.RangeFault(range);
                        if (err == Errno.EBUSY)
                            continue;
                        if (err != Errno.Ok)
                            return err;
                        _lock.Lock();
                        try
                        {
                            Zap(range.Start, range.End);
                            if (_notifier.ReadRetry(range.NotifierSeq))
                                continue;
                            return Commit(range);
                        }
                        finally
                        {
                            _lock.Unlock();
                        }
                    }
                }
                """));
    }

    [Fact]
    public async Task LockReleasedByHand_TheRetryBranchUnlocks_UsesTheSeqLocal()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Helpers + """
                public Errno Fault(HmmRange range)
                {
                    for (int attempt = 0; attempt < 8; attempt++)
                    {
                        ulong seq = _notifier.ReadBegin();
                        range.NotifierSeq = seq;
                        if (Hmm.RangeFault(range) != Errno.Ok)
                            continue;
                        _spin.Lock();
                        var err = {|#0:Commit(range)|};
                        _spin.Unlock();
                        return err;
                    }
                    return Errno.EBUSY;
                }
                """),
            [Flag(0)],
            Driver.Wrap(Helpers + """
                public Errno Fault(HmmRange range)
                {
                    for (int attempt = 0; attempt < 8; attempt++)
                    {
                        ulong seq = _notifier.ReadBegin();
                        range.NotifierSeq = seq;
                        if (Hmm.RangeFault(range) != Errno.Ok)
                            continue;
                        _spin.Lock();
                        if (_notifier.ReadRetry(seq))
                        {
                            _spin.Unlock();
                            continue;
                        }
                        var err = Commit(range);
                        _spin.Unlock();
                        return err;
                    }
                    return Errno.EBUSY;
                }
                """));
    }

    [Fact]
    public async Task UsingScopeWithEmbeddedCommit_WrapsItInABlock()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Helpers + """
                public Errno Fault(HmmRange range)
                {
                    while (true)
                    {
                        range.NotifierSeq = _notifier!.ReadBegin();
                        if (Hmm.RangeFault(range) == Errno.EBUSY)
                            continue;
                        using (_lock.Scoped())
                            return {|#0:Commit(range)|};
                    }
                }
                """),
            [Flag(0)],
            Driver.Wrap(Helpers + """
                public Errno Fault(HmmRange range)
                {
                    while (true)
                    {
                        range.NotifierSeq = _notifier!.ReadBegin();
                        if (Hmm.RangeFault(range) == Errno.EBUSY)
                            continue;
                        using (_lock.Scoped())
                        {
                            if (_notifier!.ReadRetry(range.NotifierSeq))
                                continue;
                            return Commit(range);
                        }
                    }
                }
                """));
    }

    [Fact]
    public async Task StoreInAPageLoop_CheckGoesBeforeThePageLoop_AtTheLocksLevel()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Helpers + """
                public Errno Fault(HmmRange range)
                {
                    while (true)
                    {
                        ulong seq = _notifier.ReadBegin();
                        range.NotifierSeq = seq;
                        if (Hmm.RangeFault(range) == Errno.EBUSY)
                            continue;
                        lock (_owner)
                        {
                            for (int i = 0; i < range.PageCount; i++)
                                {|#0:_table[i] = range.HmmPfns[i]|};
                            return Errno.Ok;
                        }
                    }
                }
                """),
            [Fix.Diagnostic(HMM002CommitWithoutRetryCheckAnalyzer.Descriptor).WithLocation(0).WithArguments("This store", "the notifier update lock")],
            Driver.Wrap(Helpers + """
                public Errno Fault(HmmRange range)
                {
                    while (true)
                    {
                        ulong seq = _notifier.ReadBegin();
                        range.NotifierSeq = seq;
                        if (Hmm.RangeFault(range) == Errno.EBUSY)
                            continue;
                        lock (_owner)
                        {
                            if (_notifier.ReadRetry(seq))
                                continue;
                            for (int i = 0; i < range.PageCount; i++)
                                _table[i] = range.HmmPfns[i];
                            return Errno.Ok;
                        }
                    }
                }
                """));
    }

    [Fact]
    public async Task NoLoop_LockHeldAcrossTheLoop_LockDroppedBeforeCommit_AreNotOffered()
    {
        var source = Driver.Wrap(Helpers + """
            // No loop to retry in.
            public Errno Once(HmmRange range)
            {
                range.NotifierSeq = _notifier.ReadBegin();
                if (Hmm.RangeFault(range) != Errno.Ok)
                    return Errno.EBUSY;
                using (_lock.Scoped())
                    return {|#0:Commit(range)|};
            }

            // The lock is taken outside the loop: 'continue' would fault again under it.
            public Errno Held(HmmRange range)
            {
                _lock.Lock();
                try
                {
                    while (true)
                    {
                        range.NotifierSeq = _notifier.ReadBegin();
                        if (Hmm.RangeFault(range) == Errno.EBUSY)
                            continue;
                        return {|#1:Commit(range)|};
                    }
                }
                finally
                {
                    _lock.Unlock();
                }
            }

            // Checked under the lock, committed after dropping it: no lock is held at the commit.
            public Errno Dropped(HmmRange range)
            {
                while (true)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    if (Hmm.RangeFault(range) == Errno.EBUSY)
                        continue;
                    bool stale;
                    using (_lock.Scoped())
                        stale = _notifier.ReadRetry(range.NotifierSeq);
                    if (stale)
                        continue;
                    return {|#2:Commit(range)|};
                }
            }
            """);
        await Fix.CodeFixAsync(source, [Flag(0), Flag(1), Flag(2)], source, [Flag(0), Flag(1), Flag(2)]);
    }
}
