using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM008LockNotReleasedAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM008LockNotReleasedTests
{
    // The acquisition is the diagnostic's location; the return (or end of body) that leaves the lock held, the additional one.
    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Held(int acquire, int exit, string lockName) =>
        Verify.Diagnostic().WithLocation(acquire).WithLocation(exit).WithArguments(lockName);

    [Fact]
    public async Task EarlyReturn_WithoutUnlock_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            public bool Commit(bool stale)
            {
                {|#0:_lock.Lock()|};
                if (stale)
                    {|#1:return false;|}
                Zap(0, 4096);
                _lock.Unlock();
                return true;
            }
            """), Held(0, 1, "_lock"));
    }

    [Fact]
    public async Task TryLockSuccess_NotReleased_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            public void Poll()
            {
                if ({|#0:_spin.TryLock()|})
                    Zap(0, 4096);
            {|#1:}|}
            """), Held(0, 1, "_spin"));
    }

    [Fact]
    public async Task ScopeNotDisposed_And_AcquiresOnSuccessReturnsFalseHolding_Flag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            public void Leak()
            {
                var scope = {|#0:_lock.Scoped()|};
                Zap(0, 4096);
            {|#1:}|}

            [AcquiresOnSuccess(nameof(_other))]
            private bool TakeOther(bool blockable)
            {
                {|#2:_other.Lock()|};
                if (!blockable)
                    {|#3:return false;|}
                return true;
            }
            """), Held(0, 1, "_lock"), Held(2, 3, "_other"));
    }

    [Fact]
    public async Task ReleaseInFinally_UsingScopes_LockStatement_DoNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            public bool Commit(bool stale)
            {
                _lock.Lock();
                try
                {
                    if (stale)
                        return false;
                    Zap(0, 4096);
                    return true;
                }
                finally
                {
                    _lock.Unlock();
                }
            }

            public void Scopes()
            {
                using (_lock.Scoped())
                    Zap(0, 4096);
                using var held = _other.Scoped();
                lock (_owner)
                {
                    Zap(0, 4096);
                }
            }
            """));
    }

    [Fact]
    public async Task TryLockFailureReturns_MonitorTaken_DoNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            public bool TryCommit()
            {
                if (!_lock.TryLock())
                    return false;
                try
                {
                    Zap(0, 4096);
                }
                finally
                {
                    _lock.Unlock();
                }
                return true;
            }

            public void Runtime()
            {
                bool taken = false;
                try
                {
                    Monitor.Enter(_owner, ref taken);
                    Zap(0, 4096);
                }
                finally
                {
                    if (taken)
                        Monitor.Exit(_owner);
                }
            }
            """));
    }

    [Fact]
    public async Task LockDroppedAndRetakenAroundCallback_InLoop_DoesNotFlag()
    {
        // The Ryujinx/runtime shape: release, run the callback, take the lock again, release at the end.
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            public void Signal(Action callback, int rounds)
            {
                for (int i = 0; i < rounds; i++)
                {
                    _lock.Lock();
                    Zap(0, 4096);
                    _lock.Unlock();
                    callback();
                    _lock.Lock();
                    try
                    {
                        Zap(0, 4096);
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
    public async Task AcquiringContracts_DoNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            /// <summary>Returns the scope: the caller releases.</summary>
            public LockScope Lock() => _lock.Scoped();

            [AcquiresLock(nameof(_other))]
            public void TakeOther() => _other.Lock();

            [AcquiresOnSuccess(nameof(_other))]
            public bool TryTakeOther(bool blockable)
            {
                if (blockable)
                {
                    _other.Lock();
                    return true;
                }
                return _other.TryLock();
            }
            """));
    }

    [Fact]
    public async Task Lambda_LeavesLockHeld_FlagsInsideTheLambda()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            public Func<bool, int> Work() => busy =>
            {
                {|#0:_lock.Lock()|};
                if (busy)
                    {|#1:return 1;|}
                _lock.Unlock();
                return 0;
            };
            """), Held(0, 1, "_lock"));
    }

    [Fact]
    public async Task ReleaseInCatchAndRethrow_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            public void Update()
            {
                _lock.Lock();
                try
                {
                    Zap(0, 4096);
                }
                catch
                {
                    _lock.Unlock();
                    throw;
                }
                _lock.Unlock();
            }
            """));
    }
}
