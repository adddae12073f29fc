using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM003SetSeqMissingOrUnlockedAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM003SetSeqMissingOrUnlockedTests
{
    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Missing(int location) =>
        Verify.Diagnostic(HMM003SetSeqMissingOrUnlockedAnalyzer.MissingDescriptor).WithLocation(location)
            .WithMessage("This path of the invalidate callback returns true without calling SetSeq(curSeq): a racing fault's ReadRetry will not see the invalidation");

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Unlocked(int location, string which = "the notifier update lock") =>
        Verify.Diagnostic(HMM003SetSeqMissingOrUnlockedAnalyzer.UnlockedDescriptor).WithLocation(location)
            .WithMessage($"SetSeq is called without holding {which} on every path: take the lock the fault path holds around ReadRetry first");

    [Fact]
    public async Task Invalidate_NeverCallsSetSeq_FlagsTheReturn()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                {|#1:_lock.Lock()|};
                try
                {
                    Zap(range.Start, range.End);
                }
                finally
                {
                    _lock.Unlock();
                }
                {|#0:return true;|}
            }
            """), Missing(0).WithLocation(1));   // the additional location: the lock the callback takes
    }

    [Fact]
    public async Task Invalidate_SetSeqOnOnePathOnly_FlagsTheOtherReturn()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                using ({|#1:_lock.Scoped()|})
                {
                    if (range.Event == NotifierEvent.Release)
                        {|#0:return true;|}
                    notifier.SetSeq(curSeq);
                    Zap(range.Start, range.End);
                }
                return true;
            }
            """), Missing(0).WithLocation(1));   // the additional location: the lock held there, where the fix puts SetSeq
    }

    [Fact]
    public async Task Invalidate_SetSeqBeforeLockOrAfterUnlock_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                {|#0:notifier.SetSeq(curSeq)|};
                _lock.Lock();
                Zap(range.Start, range.End);
                _lock.Unlock();
                {|#1:notifier.SetSeq(curSeq)|};
                return true;
            }
            """), Unlocked(0), Unlocked(1));
    }

    [Fact]
    public async Task Invalidate_SetSeqUnderLockOnOneBranchOnly_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (range.Blockable)
                    _lock.Lock();
                {|#0:notifier.SetSeq(curSeq)|};
                if (range.Blockable)
                    _lock.Unlock();
                return true;
            }
            """), Unlocked(0));
    }

    [Fact]
    public async Task Invalidate_UpdateLockMarked_OtherLockHeld_Flags()
    {
        await Verify.AnalyzerAsync("""
            using HmmEmu.Annotations;
            using HmmEmu.Kernel.Locking;
            using HmmEmu.Kernel.Notifiers;

            public sealed class TestDriver : IMmuIntervalNotifierOps
            {
                [NotifierUpdateLock]
                private readonly KMutex _ptLock;
                private readonly KMutex _stats;

                public TestDriver(KMutex pt, KMutex stats) { _ptLock = pt; _stats = stats; }

                public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
                {
                    if (!range.Blockable)
                        return false;
                    using (_stats.Scoped())
                        {|#0:notifier.SetSeq(curSeq)|};
                    using (_ptLock.Scoped())
                        notifier.SetSeq(curSeq);
                    return true;
                }
            }
            """, Unlocked(0, "'_ptLock'"));
    }

    [Fact]
    public async Task Invalidate_StyleGuideShape_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (range.Event == NotifierEvent.Migrate && range.Owner == _owner)
                    return true;                       // our own migration: owner-skip
                if (!range.Blockable) { if (!_lock.TryLock()) return false; }
                else _lock.Lock();
                try
                {
                    notifier.SetSeq(curSeq);
                    Zap(range.Start, range.End);
                }
                finally { _lock.Unlock(); }
                return true;
            }
            """));
    }

    [Fact]
    public async Task Invalidate_WorkAfterReleasingTheLock_DoesNotFlag()
    {
        // SetSeq under the lock, then callback work outside it (queueing teardown, statistics): fine.
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                lock (_owner)
                {
                    notifier.SetSeq(curSeq);
                }
                Zap(range.Start, range.End);
                if (range.Event == NotifierEvent.Release)
                    _kernel.SystemWorkQueue.Queue(new WorkItem("teardown", () => { }));
                return true;
            }
            """));
    }

    [Fact]
    public async Task Invalidate_ConditionalAcquireHelper_DoesNotFlag()
    {
        // The mirror driver's shape: a helper that trylocks or locks, annotated [AcquiresOnSuccess].
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                bool own = range.Event == NotifierEvent.Migrate && ReferenceEquals(range.Owner, _owner);
                if (!LockForInvalidate(_lock, range))
                    return false;
                try
                {
                    notifier.SetSeq(curSeq);
                    if (own)
                        return true;
                    Zap(range.Start, range.End);
                }
                finally
                {
                    _lock.Unlock();
                }
                return true;
            }

            [AcquiresOnSuccess(nameof(mutex))]
            private static bool LockForInvalidate(KMutex mutex, in MmuNotifierRange range)
            {
                if (range.Blockable)
                {
                    mutex.Lock();
                    return true;
                }
                return mutex.TryLock();
            }
            """));
    }
}
