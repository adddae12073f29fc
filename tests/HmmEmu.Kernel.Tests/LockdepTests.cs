using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

/// <summary>The lock checker's reports: ordering against invalidation and reclaim, recursion, and sleeping in atomic context.</summary>
public sealed class LockdepTests
{
    private const ulong Page = TestMachine.Page;
    private const string DriverLockName = "driver.lock";

    /// <summary>
    /// Maps two pages, watches them with a callback that takes <paramref name="driverLock"/>, and runs one
    /// invalidation so that the checker learns "invalidation -> driver lock". Returns the notifier.
    /// </summary>
    private static MmuIntervalNotifier WatchAndTeach(TestMachine m, KMutex driverLock, out ulong addr)
    {
        addr = m.MapAnon(2);
        m.Touch(addr, 2);
        var n = m.Watch(addr, 2 * Page, new RecordingNotifierOps { DriverLock = driverLock });
        Assert.Equal(Errno.Ok, m.Mm.Madvise(addr + Page, Page, Advice.DontNeed));
        return n;
    }

    private static KernelRuleViolationException RunExpectingViolation(TestMachine m, Action body) =>
        Assert.Throws<KernelRuleViolationException>(() => m.Run(body));

    [Fact]
    public void RangeFault_HoldingCallbackLock_ReportsCircularDependency()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var driverLock = new KMutex(m.Kernel, DriverLockName);
            var n = WatchAndTeach(m, driverLock, out ulong a);
            var range = new HmmRange(n, a, a + (2 * Page)) { NotifierSeq = n.ReadBegin(), DefaultFlags = HmmPfn.ReqFault };
            using (m.Mm.MmapReadLock())
            using (driverLock.Scoped())
                Hmm.RangeFault(range);
        });

        Assert.Contains("circular locking dependency", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Hmm.RangeFault", ex.StackTrace, StringComparison.Ordinal);
    }

    [Fact]
    public void RangeFault_HoldingCallbackLock_ReportNamesDriverLockAndInvalidation()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var driverLock = new KMutex(m.Kernel, DriverLockName);
            var n = WatchAndTeach(m, driverLock, out ulong a);
            var range = new HmmRange(n, a, a + (2 * Page)) { NotifierSeq = n.ReadBegin(), DefaultFlags = HmmPfn.ReqFault };
            using (m.Mm.MmapReadLock())
            using (driverLock.Scoped())
                Hmm.RangeFault(range);
        });

        Assert.Contains(DriverLockName, ex.Message, StringComparison.Ordinal);
        Assert.Contains("mmu_notifier_invalidate_range_start", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RangeFault_CorrectDriverProtocol_NoReport()
    {
        using var m = TestMachine.Create();
        bool committed = false;

        m.Run(() =>
        {
            var driverLock = new KMutex(m.Kernel, DriverLockName);
            var n = WatchAndTeach(m, driverLock, out ulong a);
            while (!committed)
            {
                var range = new HmmRange(n, a, a + (2 * Page)) { NotifierSeq = n.ReadBegin(), DefaultFlags = HmmPfn.ReqFault | HmmPfn.ReqWrite };
                Errno err;
                using (m.Mm.MmapReadLock())
                    err = Hmm.RangeFault(range);
                if (err == Errno.EBUSY)
                    continue;
                Assert.Equal(Errno.Ok, err);
                using (driverLock.Scoped())
                    committed = !n.ReadRetry(range.NotifierSeq);
            }
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, 2 * Page));
        });

        Assert.True(committed);
    }

    [Fact]
    public void ReadBegin_HoldingCallbackLock_ReportsCircularDependency()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var driverLock = new KMutex(m.Kernel, DriverLockName);
            var n = WatchAndTeach(m, driverLock, out _);
            using (driverLock.Scoped())
                n.ReadBegin();
        });

        Assert.Contains("circular locking dependency", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadRetry_WithoutCallbackLock_ThrowsKernelRuleViolation()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var driverLock = new KMutex(m.Kernel, DriverLockName);
            var n = WatchAndTeach(m, driverLock, out _);
            n.ReadRetry(n.ReadBegin());
        });

        Assert.Contains(DriverLockName, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalidate_MutexLockInNonBlockableCallback_ReportsNonBlockableSleep()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var driverLock = new KMutex(m.Kernel, DriverLockName);
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            // Carries a bug: the callback sleeps on a mutex even when the range is not blockable.
            var ops = new RecordingNotifierOps { OnInvalidate = (_, _) => driverLock.Scoped().Dispose() };
            m.Watch(a, Page, ops);
            m.Mm.OomReap();
        });

        Assert.Contains("non-blockable", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalidate_BlockingAllocationInNonBlockableCallback_ReportsNonBlockableSleep()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            // Carries a bug: the callback makes a GFP_KERNEL allocation even when the range is not blockable.
            var ops = new RecordingNotifierOps { OnInvalidate = (_, _) => m.Kernel.MightAlloc(Gfp.Kernel) };
            m.Watch(a, Page, ops);
            m.Mm.OomReap();
        });

        Assert.Contains("non-blockable", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalidate_BlockingAllocationInBlockableCallback_ReportsCircularDependency()
    {
        // Reclaim can start invalidations, so a GFP_KERNEL allocation inside an invalidate callback can wait for
        // itself: lockdep learns fs_reclaim -> invalidation from any earlier allocation and reports the reverse.
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            var ops = new RecordingNotifierOps { OnInvalidate = (_, _) => m.Kernel.MightAlloc(Gfp.Kernel) };
            m.Watch(a, Page, ops);
            m.Mm.Munmap(a, Page);
        });

        Assert.Contains("fs_reclaim", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalidate_AtomicAllocationInNonBlockableCallback_NoReport()
    {
        using var m = TestMachine.Create();
        var err = Errno.EINVAL;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            var ops = new RecordingNotifierOps { OnInvalidate = (_, _) => m.Kernel.MightAlloc(Gfp.Atomic) };
            m.Watch(a, Page, ops);
            err = m.Mm.OomReap();
        });

        Assert.Equal(Errno.Ok, err);
    }

    [Fact]
    public void KMutex_LockedTwiceOnOneThread_ReportsRecursiveLocking()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var mutex = new KMutex(m.Kernel, "twice");
            mutex.Lock();
            mutex.Lock();
        });

        Assert.Contains("recursive locking", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KMutex_TwoOfSameClassNested_ReportsRecursiveLocking()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var first = new KMutex(m.Kernel, "same.class");
            var second = new KMutex(m.Kernel, "same.class");
            first.Lock();
            second.Lock();
        });

        Assert.Contains("another lock of the same class", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MightAlloc_HoldingCallbackLock_ReportsCircularDependency()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var driverLock = new KMutex(m.Kernel, DriverLockName);
            WatchAndTeach(m, driverLock, out _);
            using (driverLock.Scoped())
                m.Kernel.MightAlloc(Gfp.Kernel);
        });

        Assert.Contains("circular locking dependency", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AllocPage_HoldingCallbackLock_ReportsCircularDependency()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var driverLock = new KMutex(m.Kernel, DriverLockName);
            WatchAndTeach(m, driverLock, out _);
            using (driverLock.Scoped())
                m.Kernel.Memory.AllocPage(Gfp.Kernel, out _);
        });

        Assert.Contains("circular locking dependency", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AllocPage_AllocationFirstThenCallbackTakesLock_ReportsCircularDependency()
    {
        // The same bug found in the other order: the driver allocates under its lock before any invalidation ran,
        // and the report comes when the callback first takes the lock.
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var driverLock = new KMutex(m.Kernel, DriverLockName);
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            m.Watch(a, Page, new RecordingNotifierOps { DriverLock = driverLock });
            using (driverLock.Scoped())
                m.Kernel.Memory.AllocPage(Gfp.Kernel, out _);
            m.Mm.Munmap(a, Page);
        });

        Assert.Contains("circular locking dependency", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AllocPage_AtomicHoldingCallbackLock_NoReport()
    {
        using var m = TestMachine.Create();
        var err = Errno.EINVAL;

        m.Run(() =>
        {
            var driverLock = new KMutex(m.Kernel, DriverLockName);
            WatchAndTeach(m, driverLock, out _);
            using (driverLock.Scoped())
                err = m.Kernel.Memory.AllocPage(Gfp.Atomic, out _);
        });

        Assert.Equal(Errno.Ok, err);
    }

    [Theory]
    [InlineData("(lock.A) -> (lock.B)")]   // the chain lockdep already knew
    [InlineData("(lock.B) -> (lock.A)")]   // the new chain that closes the cycle
    public void KMutex_AbBaInversion_ReportNamesBothChains(string chain)
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var a = new KMutex(m.Kernel, "lock.A");
            var b = new KMutex(m.Kernel, "lock.B");
            using (a.Scoped())
            using (b.Scoped())
            {
            }
            using (b.Scoped())
            using (a.Scoped())
            {
            }
        });

        Assert.Contains(chain, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KMutex_InversionAcrossThreeLocks_ReportsCircularDependency()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var a = new KMutex(m.Kernel, "lock.A");
            var b = new KMutex(m.Kernel, "lock.B");
            var c = new KMutex(m.Kernel, "lock.C");
            using (a.Scoped())
            using (b.Scoped())
            {
            }
            using (b.Scoped())
            using (c.Scoped())
            {
            }
            using (c.Scoped())
            using (a.Scoped())
            {
            }
        });

        Assert.Contains("circular locking dependency", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KMutex_ConsistentOrder_LearnsDependencyWithoutReport()
    {
        using var m = TestMachine.Create();
        bool learnt = false;

        m.Run(() =>
        {
            var a = new KMutex(m.Kernel, "lock.A");
            var b = new KMutex(m.Kernel, "lock.B");
            for (int i = 0; i < 2; i++)
            {
                using (a.Scoped())
                using (b.Scoped())
                {
                }
            }
            learnt = m.Kernel.Lockdep.HasDependency(a.Class, b.Class);
        });

        Assert.True(learnt);
    }

    [Fact]
    public void KMutex_LockWhileHoldingSpinlock_ReportsSleepInAtomicContext()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var spin = new KSpinLock(m.Kernel, "driver.spin");
            var mutex = new KMutex(m.Kernel, DriverLockName);
            using (spin.Scoped())
                mutex.Lock();
        });

        Assert.Contains("atomic context (holding spinlock driver.spin)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MightAlloc_BlockingWhileHoldingSpinlock_ReportsSleepInAtomicContext()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var spin = new KSpinLock(m.Kernel, "driver.spin");
            using (spin.Scoped())
                m.Kernel.MightAlloc(Gfp.Kernel);
        });

        Assert.Contains("atomic context", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mmap_WhileHoldingSpinlock_ReportsSleepInAtomicContext()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var spin = new KSpinLock(m.Kernel, "driver.spin");
            using (spin.Scoped())
                m.MapAnon(1);
        });

        Assert.Contains("atomic context", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KMutex_LockInInterruptContext_ReportsSleepInInterrupt()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var mutex = new KMutex(m.Kernel, DriverLockName);
            using (m.Kernel.EnterInterrupt())
                mutex.Lock();
        });

        Assert.Contains("interrupt context", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Completion_WaitInInterruptContext_ReportsSleepInInterrupt()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var done = new Completion(m.Kernel, "done");
            done.Complete();
            using (m.Kernel.EnterInterrupt())
                done.Wait();
        });

        Assert.Contains("interrupt context", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Completion_CompleteInInterruptContext_NoReport()
    {
        using var m = TestMachine.Create();
        bool done = false;

        m.Run(() =>
        {
            var completion = new Completion(m.Kernel, "done");
            using (m.Kernel.EnterInterrupt())
                completion.Complete();
            done = completion.IsDone;
        });

        Assert.True(done);
    }

    [Fact]
    public void KSpinLock_TakenInIrqAndWithIrqsOn_ReportsInconsistentLockState()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            var spin = new KSpinLock(m.Kernel, "irq.spin");
            using (m.Kernel.EnterInterrupt())
            using (spin.Scoped())
            {
            }
            using (spin.Scoped())
            {
            }
        });

        Assert.Contains("inconsistent lock state", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KSpinLock_TakenInIrqAndWithIrqSave_NoReport()
    {
        using var m = TestMachine.Create();
        bool finished = false;

        m.Run(() =>
        {
            var spin = new KSpinLock(m.Kernel, "irq.spin");
            using (m.Kernel.EnterInterrupt())
            using (spin.Scoped())
            {
            }
            using (spin.ScopedIrqSave())
            {
            }
            finished = true;
        });

        Assert.True(finished);
    }

    [Fact]
    public void Locks_ReleasedOutOfOrder_LeaveExactlyTheOthersHeld()
    {
        // Releases usually come in reverse order (the checker's fast path); from the middle and the bottom of the
        // held stack they must still remove exactly that lock.
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            var a = new KMutex(m.Kernel, "order.a");
            var b = new KMutex(m.Kernel, "order.b");
            var c = new KMutex(m.Kernel, "order.c");
            a.Lock();
            b.Lock();
            c.Lock();
            b.Unlock();                                         // from the middle
            a.AssertHeld("test");
            c.AssertHeld("test");
            Assert.Throws<KernelRuleViolationException>(() => b.AssertHeld("test"));
            a.Unlock();                                         // from the bottom
            c.AssertHeld("test");
            Assert.Throws<KernelRuleViolationException>(() => a.AssertHeld("test"));
            c.Unlock();                                         // the last one, from the top
            Assert.Throws<KernelRuleViolationException>(() => c.AssertHeld("test"));
            b.Lock();                                           // held nothing: no recursion report
            b.Unlock();
        });
    }

    [Fact]
    public void KMutex_UnlockByNonOwner_ThrowsKernelRuleViolation()
    {
        using var m = TestMachine.Create();

        RunExpectingViolation(m, () =>
        {
            var mutex = new KMutex(m.Kernel, DriverLockName);
            mutex.Lock();
            var other = m.Kernel.Scheduler.Spawn("other", mutex.Unlock);
            other.Join();
        });
    }

    [Fact]
    public void KMutex_Contended_SecondThreadWaitsForOwner()
    {
        using var m = TestMachine.Create();
        var order = new List<string>();

        m.Run(() =>
        {
            var mutex = new KMutex(m.Kernel, DriverLockName);
            mutex.Lock();
            var waiter = m.Kernel.Scheduler.Spawn("waiter", () =>
            {
                using (mutex.Scoped())
                    order.Add("waiter");
            });
            m.Kernel.Scheduler.Sleep(10_000);
            order.Add("owner");
            mutex.Unlock();
            waiter.Join();
        });

        Assert.Equal(["owner", "waiter"], order);
    }

    [Fact]
    public void MmapReadLock_TakenTwiceOnOneThread_ReportsRecursiveLocking()
    {
        using var m = TestMachine.Create();

        var ex = RunExpectingViolation(m, () =>
        {
            using (m.Mm.MmapReadLock())
            using (m.Mm.MmapReadLock())
            {
            }
        });

        Assert.Contains("recursive locking", ex.Message, StringComparison.Ordinal);
    }
}
