using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

/// <summary>The mmu_interval_read_begin / read_retry / set_seq sequence protocol.</summary>
public sealed class NotifierSequenceTests
{
    private const ulong Page = TestMachine.Page;

    /// <summary>What <see cref="RunOverlappingInvalidations"/> saw.</summary>
    private sealed record Observations(
        ulong SeqIdle,
        ulong SeqBothActive,
        ulong SeqFirstEnded,
        ulong SeqAllEnded,
        string? ReaderWaitWhileBothActive,
        string? ReaderWaitAfterFirstEnded,
        bool ReaderReturnedAfterLastEnded,
        bool RetryForSeqReadBefore,
        bool RetryForReaderSeq,
        ulong CurSeqA,
        ulong CurSeqB);

    /// <summary>
    /// Two threads invalidate overlapping ranges (madvise DONTNEED of pages 0-1 and 1-2, which only takes the mmap
    /// lock for reading, so both run at once); each callback blocks until the test releases it. A third thread calls
    /// ReadBegin while both are active. The main thread records the mm's sequence and the reader's progress as the
    /// two invalidations end one after the other.
    /// </summary>
    private static Observations RunOverlappingInvalidations()
    {
        using var m = TestMachine.Create();
        var k = m.Kernel;
        Observations? result = null;
        m.Run(() =>
        {
            var enteredA = new Completion(k, "A entered");
            var enteredB = new Completion(k, "B entered");
            var releaseA = new Completion(k, "release A");
            var releaseB = new Completion(k, "release B");
            ulong curSeqA = 0, curSeqB = 0;
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var ops = new RecordingNotifierOps();
            var n = m.Watch(a, 4 * Page, ops);
            ops.OnInvalidate = (notifier, range) =>
            {
                if (range.Start == a)
                {
                    curSeqA = notifier.Seq;
                    enteredA.Complete();
                    releaseA.Wait();
                }
                else
                {
                    curSeqB = notifier.Seq;
                    enteredB.Complete();
                    releaseB.Wait();
                }
            };
            ulong seqIdle = m.Mm.NotifierSeq;
            ulong before = n.ReadBegin();

            var threadA = k.Scheduler.Spawn("invalidate A", () => Assert.Equal(Errno.Ok, m.Mm.Madvise(a, 2 * Page, Advice.DontNeed)));
            var threadB = k.Scheduler.Spawn("invalidate B", () => Assert.Equal(Errno.Ok, m.Mm.Madvise(a + Page, 2 * Page, Advice.DontNeed)));
            enteredA.Wait();
            enteredB.Wait();
            ulong seqBoth = m.Mm.NotifierSeq;

            bool readerReturned = false;
            ulong readerSeq = 0;
            var reader = k.Scheduler.Spawn("reader", () =>
            {
                readerSeq = n.ReadBegin();
                readerReturned = true;
            });
            k.Scheduler.Sleep(100_000);
            string? waitWhileBoth = readerReturned ? null : reader.WaitReason;

            releaseA.Complete();
            threadA.Join();
            k.Scheduler.Sleep(100_000);
            string? waitAfterFirst = readerReturned ? null : reader.WaitReason;
            ulong seqFirstEnded = m.Mm.NotifierSeq;

            releaseB.Complete();
            threadB.Join();
            reader.Join();
            result = new Observations(
                seqIdle, seqBoth, seqFirstEnded, m.Mm.NotifierSeq,
                waitWhileBoth, waitAfterFirst, readerReturned,
                n.ReadRetry(before), n.ReadRetry(readerSeq), curSeqA, curSeqB);
        });
        return result!;
    }

    [Fact]
    public void NotifierSeq_Idle_IsEven()
    {
        Assert.Equal(0UL, RunOverlappingInvalidations().SeqIdle & 1);
    }

    [Fact]
    public void NotifierSeq_WhileInvalidationsActive_IsOdd()
    {
        Assert.Equal(1UL, RunOverlappingInvalidations().SeqBothActive & 1);
    }

    [Fact]
    public void NotifierSeq_AfterFirstOfTwoOverlappingEnds_StaysOdd()
    {
        Assert.Equal(1UL, RunOverlappingInvalidations().SeqFirstEnded & 1);
    }

    [Fact]
    public void NotifierSeq_AfterLastInvalidationEnds_IsEvenAndAdvanced()
    {
        var o = RunOverlappingInvalidations();

        Assert.Equal(o.SeqBothActive + 1, o.SeqAllEnded);
    }

    [Fact]
    public void Invalidate_ConcurrentOverlappingInvalidations_ShareOneCurSeq()
    {
        var o = RunOverlappingInvalidations();

        Assert.Equal((o.SeqBothActive, o.SeqBothActive), (o.CurSeqA, o.CurSeqB));
    }

    [Fact]
    public void ReadBegin_WhileTwoInvalidationsActive_WaitsOnNotifierQueue()
    {
        Assert.Contains("notifier_wq", RunOverlappingInvalidations().ReaderWaitWhileBothActive ?? "(returned)", StringComparison.Ordinal);
    }

    [Fact]
    public void ReadBegin_AfterFirstOfTwoInvalidationsEnds_StillWaitsOnNotifierQueue()
    {
        Assert.Contains("notifier_wq", RunOverlappingInvalidations().ReaderWaitAfterFirstEnded ?? "(returned)", StringComparison.Ordinal);
    }

    [Fact]
    public void ReadBegin_AfterLastInvalidationEnds_Returns()
    {
        Assert.True(RunOverlappingInvalidations().ReaderReturnedAfterLastEnded);
    }

    [Fact]
    public void ReadRetry_SeqReadBeforeInvalidations_ReturnsTrue()
    {
        Assert.True(RunOverlappingInvalidations().RetryForSeqReadBefore);
    }

    [Fact]
    public void ReadRetry_SeqFromReadBeginThatWaited_ReturnsFalse()
    {
        Assert.False(RunOverlappingInvalidations().RetryForReaderSeq);
    }

    [Fact]
    public void ReadBegin_OwnInvalidationEndedButUnrelatedOneActive_StillWaits()
    {
        // The sequence is per address space: it stays odd until the last running invalidation ends, even one that
        // touched only another notifier, and a reader whose notifier was invalidated waits for that too.
        using var m = TestMachine.Create();
        var k = m.Kernel;
        string? waitReason = null;

        m.Run(() =>
        {
            var enteredA = new Completion(k, "A entered");
            var enteredB = new Completion(k, "B entered");
            var releaseA = new Completion(k, "release A");
            var releaseB = new Completion(k, "release B");
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var first = new RecordingNotifierOps { OnInvalidate = (_, _) => { enteredA.Complete(); releaseA.Wait(); } };
            var second = new RecordingNotifierOps { OnInvalidate = (_, _) => { enteredB.Complete(); releaseB.Wait(); } };
            var n = m.Watch(a, Page, first);
            m.Watch(a + (2 * Page), Page, second);
            var threadA = k.Scheduler.Spawn("invalidate A", () => Assert.Equal(Errno.Ok, m.Mm.Madvise(a, Page, Advice.DontNeed)));
            var threadB = k.Scheduler.Spawn("invalidate B", () => Assert.Equal(Errno.Ok, m.Mm.Madvise(a + (2 * Page), Page, Advice.DontNeed)));
            enteredA.Wait();
            enteredB.Wait();
            releaseA.Complete();
            threadA.Join();
            bool returned = false;
            var reader = k.Scheduler.Spawn("reader", () =>
            {
                n.ReadBegin();
                returned = true;
            });
            k.Scheduler.Sleep(100_000);
            waitReason = returned ? "(returned)" : reader.WaitReason;
            releaseB.Complete();
            threadB.Join();
            reader.Join();
        });

        Assert.Contains("notifier_wq", waitReason, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadRetry_NoInvalidationSinceReadBegin_ReturnsFalse()
    {
        using var m = TestMachine.Create();
        bool retry = true;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            var n = m.Watch(a, 2 * Page, new RecordingNotifierOps());
            ulong seq = n.ReadBegin();
            m.Touch(a, 2);
            retry = n.ReadRetry(seq);
        });

        Assert.False(retry);
    }

    [Fact]
    public void ReadRetry_InvalidationOutsideInterval_ReturnsFalse()
    {
        using var m = TestMachine.Create();
        bool retry = true;

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var n = m.Watch(a, 2 * Page, new RecordingNotifierOps());
            ulong seq = n.ReadBegin();
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a + (2 * Page), 2 * Page, Advice.DontNeed));
            retry = n.ReadRetry(seq);
        });

        Assert.False(retry);
    }

    [Fact]
    public void ReadRetry_InvalidationInsideInterval_ReturnsTrue()
    {
        using var m = TestMachine.Create();
        bool retry = false;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            var n = m.Watch(a, 2 * Page, new RecordingNotifierOps());
            ulong seq = n.ReadBegin();
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a + Page, Page, Advice.DontNeed));
            retry = n.ReadRetry(seq);
        });

        Assert.True(retry);
    }

    [Fact]
    public void CheckRetry_InvalidationInsideInterval_ReturnsTrue()
    {
        using var m = TestMachine.Create();
        bool retry = false;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            ulong seq = n.ReadBegin();
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page));
            retry = n.CheckRetry(seq);
        });

        Assert.True(retry);
    }

    [Fact]
    public void NotifierSeq_InvalidationOverlappingNoNotifier_Unchanged()
    {
        using var m = TestMachine.Create();
        ulong before = 0, after = 1;

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            m.Watch(a, Page, new RecordingNotifierOps());
            before = m.Mm.NotifierSeq;
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a + (2 * Page), 2 * Page, Advice.DontNeed));
            after = m.Mm.NotifierSeq;
        });

        Assert.Equal(before, after);
    }

    [Fact]
    public void Invalidate_AdjacentNotifiers_OnlyOverlappingOneCalled()
    {
        using var m = TestMachine.Create();
        var before = new RecordingNotifierOps();
        var inside = new RecordingNotifierOps();
        var after = new RecordingNotifierOps();

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            m.Touch(a, 3);
            m.Watch(a, Page, before);
            m.Watch(a + Page, Page, inside);
            m.Watch(a + (2 * Page), Page, after);
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a + Page, Page, Advice.DontNeed));
        });

        Assert.Equal((0, 1, 0), (before.Ranges.Count, inside.Ranges.Count, after.Ranges.Count));
    }

    [Fact]
    public void Invalidate_CallbackReturnsTrueWithoutSetSeq_RaisesKernelWarning()
    {
        using var m = TestMachine.Create();

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            m.Watch(a, Page, new ForgetsSetSeqOps());
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page));
        });

        Assert.Contains("SetSeq", Assert.Single(m.Kernel.Warnings).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalidate_CallbackRefusesBlockableRange_RaisesKernelWarning()
    {
        using var m = TestMachine.Create();

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            m.Watch(a, Page, new RefusesEverythingOps());
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page));
        });

        Assert.Contains("blockable", Assert.Single(m.Kernel.Warnings).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalidate_WellBehavedCallback_RaisesNoWarning()
    {
        using var m = TestMachine.Create();

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            m.Watch(a, 2 * Page, new RecordingNotifierOps { DriverLock = new KMutex(m.Kernel, "driver.lock") });
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, 2 * Page, Prot.Read));
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, 2 * Page));
        });

        m.Kernel.AssertNoWarnings();
    }

    [Fact]
    public void SetSeq_OutsideCallback_ThrowsKernelRuleViolation()
    {
        using var m = TestMachine.Create();

        Assert.Throws<KernelRuleViolationException>(() => m.Run(() =>
        {
            var n = m.Watch(m.MapAnon(1), Page, new RecordingNotifierOps());
            n.SetSeq(n.ReadBegin());
        }));
    }

    /// <summary>Carries a bug: returns true without calling SetSeq, so a racing reader's ReadRetry passes.</summary>
    private sealed class ForgetsSetSeqOps : IMmuIntervalNotifierOps
    {
        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => true;
    }

    /// <summary>Carries a bug: refuses every range, even blockable ones that must be waited for.</summary>
    private sealed class RefusesEverythingOps : IMmuIntervalNotifierOps
    {
        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;
    }
}
