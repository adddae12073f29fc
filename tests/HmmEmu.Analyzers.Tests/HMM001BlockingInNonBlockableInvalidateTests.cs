using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM001BlockingInNonBlockableInvalidateAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM001BlockingInNonBlockableInvalidateTests
{
    [Fact]
    public async Task Invalidate_LockWithoutBlockableTest_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                {|#0:_lock.Lock()|};
                try
                {
                    notifier.SetSeq(curSeq);
                    Zap(range.Start, range.End);
                }
                finally
                {
                    _lock.Unlock();
                }
                return true;
            }
            """), Verify.Diagnostic().WithLocation(0).WithArguments("KMutex.Lock"));
    }

    [Fact]
    public async Task Invalidate_WaitAfterTryLockJoinsLockPath_FlagsTheWait()
    {
        // The trylock path rejoins the sleeping path and then waits for the device: a non-blockable invalidation sleeps.
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable) { if (!_lock.TryLock()) return false; }
                else _lock.Lock();
                try
                {
                    notifier.SetSeq(curSeq);
                    Zap(range.Start, range.End);
                    {|#0:_done.Wait()|};
                }
                finally { _lock.Unlock(); }
                return true;
            }
            """), Verify.Diagnostic().WithLocation(0).WithArguments("Completion.Wait"));
    }

    [Fact]
    public async Task Invalidate_BlockingBeforeTheGuard_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                {|#0:_kernel.Memory.AllocPage(Gfp.Kernel, out ulong pfn)|};
                {|#1:Thread.Sleep(1)|};
                {|#2:lock (_owner)|}
                {
                    Zap(range.Start, range.End);
                }
                if (!range.Blockable)
                    return false;
                using (_lock.Scoped())
                    notifier.SetSeq(curSeq);
                return true;
            }
            """),
            Verify.Diagnostic().WithLocation(0).WithArguments("PhysicalMemory.AllocPage"),
            Verify.Diagnostic().WithLocation(1).WithArguments("Thread.Sleep"),
            Verify.Diagnostic().WithLocation(2).WithArguments("lock statement"));
    }

    [Fact]
    public async Task InvalidateCallbackAttribute_BlockingWithoutGuard_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => true;

            [InvalidateCallback]
            public bool OnInvalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                {|#0:_events.WaitEvent(this, static d => true)|};
                return false;
            }
            """), Verify.Diagnostic().WithLocation(0).WithArguments("WaitQueue.WaitEvent"));
    }

    [Fact]
    public async Task Invalidate_GuardReturnsFalseFirst_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                _lock.Lock();
                try
                {
                    notifier.SetSeq(curSeq);
                    Zap(range.Start, range.End);
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

    [Fact]
    public async Task Invalidate_TryLockBranchDoesOnlyNonBlockingWork_DoesNotFlag()
    {
        // The GPU/RNIC driver shape: the non-blockable branch trylocks, bails if it would have to wait, returns.
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                {
                    if (!_lock.TryLock())
                        return false;
                    try
                    {
                        _spin.Lock();
                        notifier.SetSeq(curSeq);
                        _kernel.Memory.AllocPage(Gfp.Atomic, out ulong pfn);
                        _spin.Unlock();
                        return true;
                    }
                    finally
                    {
                        _lock.Unlock();
                    }
                }
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

    [Fact]
    public async Task Invalidate_OwnMigrationEventKnown_DoesNotFlag()
    {
        // Only the OOM reaper sends non-blockable ranges, always as Unmap: a Migrate range is blockable.
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (range.Event == NotifierEvent.Migrate && ReferenceEquals(range.Owner, _owner))
                {
                    using (_lock.Scoped())
                        notifier.SetSeq(curSeq);
                    return true;
                }
                bool blockable = range.Blockable;
                if (!blockable)
                    return false;
                using (_lock.Scoped())
                {
                    notifier.SetSeq(curSeq);
                    Action later = () => _done.Wait();
                }
                return true;
            }
            """));
    }

    [Fact]
    public async Task NotACallback_Blocking_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            public bool Fault(MmuIntervalNotifier notifier, MmuNotifierRange range)
            {
                _lock.Lock();
                _done.Wait();
                _lock.Unlock();
                return true;
            }
            """));
    }

    [Fact]
    public async Task Invalidate_AllocationFlagsNotConstant_CountAsReclaiming()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public Gfp Flags { get; set; } = Gfp.Atomic;

            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                _kernel.Memory.AllocPage(Gfp.Atomic | Gfp.Zero, out ulong a);
                {|#0:_kernel.Memory.AllocPage(Flags, out ulong b)|};
                {|#1:_kernel.MightAlloc(Gfp.NoFs)|};
                return false;
            }
            """),
            Verify.Diagnostic().WithLocation(0).WithArguments("PhysicalMemory.AllocPage"),
            Verify.Diagnostic().WithLocation(1).WithArguments("HostKernel.MightAlloc"));
    }
}
