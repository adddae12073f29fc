using HmmEmu.Analyzers.CodeFixes;
using Fix = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM008LockNotReleasedAnalyzer, HmmEmu.Analyzers.CodeFixes.HMM008WrapInTryFinallyCodeFix>;

namespace HmmEmu.Analyzers.Tests;

public class HMM008CodeFixTests
{
    private const string Invalidate = "public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;\n\n";

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Held(int acquire, int exit, string lockName) =>
        Fix.Diagnostic(HMM008LockNotReleasedAnalyzer.Descriptor).WithLocation(acquire).WithLocation(exit).WithArguments(lockName);

    [Fact]
    public async Task EarlyReturn_WrapsInTryFinally_DropsTheFinalUnlock()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Invalidate + """
                public Errno Commit(bool stale)
                {
                    {|#0:_lock.Lock()|};
                    if (stale)
                        {|#1:return Errno.EBUSY;|}
                    Zap(0, 4096);
                    _lock.Unlock();
                    return Errno.Ok;
                }
                """),
            [Held(0, 1, "_lock")],
            Driver.Wrap(Invalidate + """
                public Errno Commit(bool stale)
                {
                    _lock.Lock();
                    try
                    {
                        if (stale)
                            return Errno.EBUSY;
                        Zap(0, 4096);
                        return Errno.Ok;
                    }
                    finally
                    {
                        _lock.Unlock();
                    }
                }
                """));
    }

    [Fact]
    public async Task UnlockBeforeConstantReturn_IsDropped_CodeAfterTheUnlockStaysOutside()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Invalidate + """
                public int Update(bool a, bool b, ulong start)
                {
                    if (!{|#0:_spin.TryLock()|})
                        return -1;
                    if (a)
                    {
                        _spin.Unlock();
                        return -2;
                    }
                    if (b)
                        {|#1:return -3;|}
                    Zap(start, start + 4096);
                    _spin.Unlock();
                    Zap(0, start);
                    return Count(start);
                }

                private int Count(ulong start) => (int)start;
                """),
            [Held(0, 1, "_spin")],
            Driver.Wrap(Invalidate + """
                public int Update(bool a, bool b, ulong start)
                {
                    if (!_spin.TryLock())
                        return -1;
                    try
                    {
                        if (a)
                        {
                            return -2;
                        }
                        if (b)
                            return -3;
                        Zap(start, start + 4096);
                    }
                    finally
                    {
                        _spin.Unlock();
                    }
                    Zap(0, start);
                    return Count(start);
                }

                private int Count(ulong start) => (int)start;
                """));
    }

    [Fact]
    public async Task TryLockBody_AndMonitorEnter_GetTheirOwnRelease_FixAllDoesBoth()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Invalidate + """
                public void Poll()
                {
                    if ({|#0:_spin.TryLock()|})
                        Zap(0, 4096);
                {|#1:}|}

                public bool Drain(bool empty)
                {
                    {|#2:Monitor.Enter(_owner)|};
                    if (empty)
                        {|#3:return false;|}
                    Monitor.Exit(_owner);
                    return true;
                }
                """),
            [Held(0, 1, "_spin"), Held(2, 3, "_owner")],
            Driver.Wrap(Invalidate + """
                public void Poll()
                {
                    if (_spin.TryLock())
                    {
                        try
                        {
                            Zap(0, 4096);
                        }
                        finally
                        {
                            _spin.Unlock();
                        }
                    }
                }

                public bool Drain(bool empty)
                {
                    Monitor.Enter(_owner);
                    try
                    {
                        if (empty)
                            return false;
                        return true;
                    }
                    finally
                    {
                        Monitor.Exit(_owner);
                    }
                }
                """));
    }

    [Fact]
    public async Task TwoLocks_FixAllNestsTheSecondTryInTheFirst()
    {
        await Fix.CodeFixAsync(
            Driver.Wrap(Invalidate + """
                public bool Move(bool stale)
                {
                    {|#0:_lock.Lock()|};
                    {|#1:_spin.Lock()|};
                    if (stale)
                        {|#2:return false;|}
                    Zap(0, 4096);
                    _spin.Unlock();
                    _lock.Unlock();
                    return true;
                }
                """),
            [Held(0, 2, "_lock"), Held(1, 2, "_spin")],
            Driver.Wrap(Invalidate + """
                public bool Move(bool stale)
                {
                    _lock.Lock();
                    try
                    {
                        _spin.Lock();
                        try
                        {
                            if (stale)
                                return false;
                            Zap(0, 4096);
                            return true;
                        }
                        finally
                        {
                            _spin.Unlock();
                        }
                    }
                    finally
                    {
                        _lock.Unlock();
                    }
                }
                """));
    }

    [Fact]
    public async Task DropAndRetake_IsNotOffered()
    {
        // The unlock before the wait is followed by more work, not by a return: a finally would release twice.
        var source = Driver.Wrap(Invalidate + """
            public bool Sync(bool busy, bool stale)
            {
                {|#0:_lock.Lock()|};
                if (busy)
                {
                    _lock.Unlock();
                    _done.Wait();
                    return false;
                }
                if (stale)
                    {|#1:return false;|}
                _lock.Unlock();
                return true;
            }
            """);
        await Fix.CodeFixAsync(source, [Held(0, 1, "_lock")], source, [Held(0, 1, "_lock")]);
    }

    [Fact]
    public async Task AcquiresOnSuccessContract_IsNotOffered()
    {
        // Returning true holding _other is the contract; a finally would break it.
        var source = Driver.Wrap(Invalidate + """
            [AcquiresOnSuccess(nameof(_other))]
            private bool TakeOther(bool blockable)
            {
                {|#0:_other.Lock()|};
                if (!blockable)
                    {|#1:return false;|}
                return true;
            }
            """);
        await Fix.CodeFixAsync(source, [Held(0, 1, "_other")], source, [Held(0, 1, "_other")]);
    }

    [Fact]
    public async Task ReleasedAfterTheBlock_OrLocalUsedAfterTheUnlock_IsNotOffered()
    {
        // Poll: the lock is released after the inner block, so a finally inside it would release twice.
        // Read: 'v' is declared under the lock and used after the unlock.
        var source = Driver.Wrap(Invalidate + """
            public void Poll(bool stop)
            {
                {
                    {|#0:_lock.Lock()|};
                    if (stop)
                        return;
                    Zap(0, 4096);
                }
                _lock.Unlock();
            {|#1:}|}

            public ulong Read(bool stale, ulong start)
            {
                {|#2:_lock.Lock()|};
                if (stale)
                    {|#3:return 0;|}
                ulong v = start + 1;
                _lock.Unlock();
                Zap(start, v);
                return v;
            }
            """);
        await Fix.CodeFixAsync(source, [Held(0, 1, "_lock"), Held(2, 3, "_lock")], source, [Held(0, 1, "_lock"), Held(2, 3, "_lock")]);
    }
}
