using HmmEmu.Analyzers.CodeFixes;

namespace HmmEmu.Analyzers.Tests;

public class CodeFixTests
{
    [Fact]
    public async Task HMM001_InsertsGuardAtTop_FixesEveryBlockingCall()
    {
        await Verify<HMM001BlockingInNonBlockableInvalidateAnalyzer, HMM001InsertNonBlockableGuardCodeFix>.CodeFixAsync(
            Driver.Wrap("""
                public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
                {
                    {|#0:_lock.Lock()|};
                    try
                    {
                        notifier.SetSeq(curSeq);
                        {|#1:_done.Wait()|};
                    }
                    finally
                    {
                        _lock.Unlock();
                    }
                    return true;
                }
                """),
            [
                Verify<HMM001BlockingInNonBlockableInvalidateAnalyzer, HMM001InsertNonBlockableGuardCodeFix>.Diagnostic(HMM001BlockingInNonBlockableInvalidateAnalyzer.Descriptor).WithLocation(0).WithArguments("KMutex.Lock"),
                Verify<HMM001BlockingInNonBlockableInvalidateAnalyzer, HMM001InsertNonBlockableGuardCodeFix>.Diagnostic(HMM001BlockingInNonBlockableInvalidateAnalyzer.Descriptor).WithLocation(1).WithArguments("Completion.Wait"),
            ],
            Driver.Wrap("""
                public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
                {
                    if (!range.Blockable)
                        return false;
                    _lock.Lock();
                    try
                    {
                        notifier.SetSeq(curSeq);
                        _done.Wait();
                    }
                    finally
                    {
                        _lock.Unlock();
                    }
                    return true;
                }
                """));
    }

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Missing(int location, int acquire) =>
        Verify<HMM003SetSeqMissingOrUnlockedAnalyzer, HMM003InsertSetSeqCodeFix>.Diagnostic(HMM003SetSeqMissingOrUnlockedAnalyzer.MissingDescriptor)
            .WithLocation(location).WithLocation(acquire);

    [Fact]
    public async Task HMM003_LockThenTry_InsertsSetSeqFirstInTheTry()
    {
        await Verify<HMM003SetSeqMissingOrUnlockedAnalyzer, HMM003InsertSetSeqCodeFix>.CodeFixAsync(
            Driver.Wrap("""
                public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
                {
                    if (!range.Blockable)
                        return false;
                    {|#1:_lock.Lock()|};
                    try
                    {
                        Zap(range.Start, range.End);
                        {|#0:return true;|}
                    }
                    finally
                    {
                        _lock.Unlock();
                    }
                }
                """),
            [Missing(0, 1)],
            Driver.Wrap("""
                public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
                {
                    if (!range.Blockable)
                        return false;
                    _lock.Lock();
                    try
                    {
                        notifier.SetSeq(curSeq);
                        Zap(range.Start, range.End);
                        return true;
                    }
                    finally
                    {
                        _lock.Unlock();
                    }
                }
                """));
    }

    [Fact]
    public async Task HMM003_TryLockOrLock_InsertsSetSeqAfterTheIfElse()
    {
        await Verify<HMM003SetSeqMissingOrUnlockedAnalyzer, HMM003InsertSetSeqCodeFix>.CodeFixAsync(
            Driver.Wrap("""
                public bool Invalidate(MmuIntervalNotifier n, in MmuNotifierRange range, ulong seq)
                {
                    if (!range.Blockable) { if (!{|#1:_lock.TryLock()|}) return false; }
                    else _lock.Lock();
                    Zap(range.Start, range.End);
                    _lock.Unlock();
                    {|#0:return true;|}
                }
                """),
            [Missing(0, 1)],
            Driver.Wrap("""
                public bool Invalidate(MmuIntervalNotifier n, in MmuNotifierRange range, ulong seq)
                {
                    if (!range.Blockable) { if (!_lock.TryLock()) return false; }
                    else _lock.Lock();
                    n.SetSeq(seq);
                    Zap(range.Start, range.End);
                    _lock.Unlock();
                    return true;
                }
                """),
            remaining: null);
    }

    [Fact]
    public async Task HMM003_UsingScopeWithEmbeddedStatement_WrapsItInABlock()
    {
        await Verify<HMM003SetSeqMissingOrUnlockedAnalyzer, HMM003InsertSetSeqCodeFix>.CodeFixAsync(
            Driver.Wrap("""
                public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
                {
                    if (!range.Blockable)
                        return false;
                    using ({|#1:_lock.Scoped()|})
                        {|#0:return true;|}
                }
                """),
            [Missing(0, 1)],
            Driver.Wrap("""
                public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
                {
                    if (!range.Blockable)
                        return false;
                    using (_lock.Scoped())
                    {
                        notifier.SetSeq(curSeq);
                        return true;
                    }
                }
                """));
    }
}
