using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

/// <summary>Inserting and removing interval notifiers, including while invalidations run.</summary>
public sealed class NotifierLifecycleTests
{
    private const ulong Page = TestMachine.Page;

    [Fact]
    public void Insert_LengthZero_ReturnsEOVERFLOW()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = new MmuIntervalNotifier(new RecordingNotifierOps()).Insert(m.Mm, m.MapAnon(1), 0));

        Assert.Equal(Errno.EOVERFLOW, err);
    }

    [Fact]
    public void Insert_LengthZero_LeavesNotifierUnregistered()
    {
        using var m = TestMachine.Create();
        var n = new MmuIntervalNotifier(new RecordingNotifierOps());

        m.Run(() => n.Insert(m.Mm, m.MapAnon(1), 0));

        Assert.Equal(NotifierState.Unregistered, n.State);
    }

    [Fact]
    public void Insert_RangeWrapsAround_ReturnsEOVERFLOW()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = new MmuIntervalNotifier(new RecordingNotifierOps()).Insert(m.Mm, ulong.MaxValue - Page + 1, 2 * Page));

        Assert.Equal(Errno.EOVERFLOW, err);
    }

    [Fact]
    public void Insert_Valid_StateInsertedAndCounted()
    {
        using var m = TestMachine.Create();
        var n = new MmuIntervalNotifier(new RecordingNotifierOps());

        m.Run(() => Assert.Equal(Errno.Ok, n.Insert(m.Mm, m.MapAnon(1), Page)));

        Assert.Equal((NotifierState.Inserted, 1), (n.State, m.Mm.NotifierCount));
    }

    [Fact]
    public void Insert_Twice_ThrowsInvalidOperation()
    {
        using var m = TestMachine.Create();

        Assert.Throws<InvalidOperationException>(() => m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            n.Insert(m.Mm, a, Page);
        }));
    }

    [Fact]
    public void Insert_IntoExitedAddressSpace_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.Exit();
            err = new MmuIntervalNotifier(new RecordingNotifierOps()).Insert(m.Mm, a, Page);
        });

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Remove_Twice_ThrowsInvalidOperation()
    {
        using var m = TestMachine.Create();

        Assert.Throws<InvalidOperationException>(() => m.Run(() =>
        {
            var n = m.Watch(m.MapAnon(1), Page, new RecordingNotifierOps());
            n.Remove();
            n.Remove();
        }));
    }

    [Fact]
    public void Remove_Twice_StateStaysRemoved()
    {
        using var m = TestMachine.Create();
        MmuIntervalNotifier? n = null;

        m.Run(() =>
        {
            n = m.Watch(m.MapAnon(1), Page, new RecordingNotifierOps());
            n.Remove();
            Assert.Throws<InvalidOperationException>(n.Remove);
        });

        Assert.Equal(NotifierState.Removed, n!.State);
    }

    [Fact]
    public void Remove_NeverInserted_ThrowsInvalidOperation()
    {
        var n = new MmuIntervalNotifier(new RecordingNotifierOps());

        Assert.Throws<InvalidOperationException>(n.Remove);
    }

    [Fact]
    public void Remove_InsideInvalidateCallback_ThrowsKernelRuleViolation()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        Exception? thrown = null;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            ops.OnInvalidate = (self, _) => thrown = Record.Exception(self.Remove);
            m.Watch(a, Page, ops);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page));
        });

        Assert.IsType<KernelRuleViolationException>(thrown);
    }

    [Fact]
    public void Remove_InsideInvalidateCallback_NotifierStaysInserted()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        MmuIntervalNotifier? n = null;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            ops.OnInvalidate = (self, _) => Record.Exception(self.Remove);
            n = m.Watch(a, Page, ops);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page));
        });

        Assert.Equal(NotifierState.Inserted, n!.State);
    }

    [Fact]
    public void Remove_AfterRemoval_NoMoreCallbacks()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            m.Watch(a, Page, ops).Remove();
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page));
        });

        Assert.Empty(ops.Ranges);
    }

    [Fact]
    public void Remove_WhileItsInvalidationRuns_WaitsUntilItEnds()
    {
        using var m = TestMachine.Create();
        var k = m.Kernel;
        (NotifierState State, bool Returned) duringInvalidation = default;
        NotifierState afterwards = default;

        m.Run(() =>
        {
            var entered = new Completion(k, "entered");
            var release = new Completion(k, "release");
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            var ops = new RecordingNotifierOps();
            var n = m.Watch(a, Page, ops);
            ops.OnInvalidate = (_, _) =>
            {
                entered.Complete();
                release.Wait();
            };
            var unmapper = k.Scheduler.Spawn("unmapper", () => Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page)));
            entered.Wait();
            bool returned = false;
            var remover = k.Scheduler.Spawn("remover", () =>
            {
                n.Remove();
                returned = true;
            });
            k.Scheduler.Sleep(100_000);
            duringInvalidation = (n.State, returned);
            release.Complete();
            unmapper.Join();
            remover.Join();
            afterwards = n.State;
        });

        Assert.Equal(((NotifierState.PendingRemove, false), NotifierState.Removed), (duringInvalidation, afterwards));
    }

    [Fact]
    public void Insert_WhileInvalidationRuns_PendingUntilItEnds()
    {
        using var m = TestMachine.Create();
        var k = m.Kernel;
        NotifierState during = default, afterwards = default;

        m.Run(() =>
        {
            var entered = new Completion(k, "entered");
            var release = new Completion(k, "release");
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            var ops = new RecordingNotifierOps();
            m.Watch(a, Page, ops);
            ops.OnInvalidate = (_, _) =>
            {
                entered.Complete();
                release.Wait();
            };
            var unmapper = k.Scheduler.Spawn("unmapper", () => Assert.Equal(Errno.Ok, m.Mm.Madvise(a, Page, Advice.DontNeed)));
            entered.Wait();
            var late = new MmuIntervalNotifier(new RecordingNotifierOps());
            Assert.Equal(Errno.Ok, late.Insert(m.Mm, a + Page, Page));
            during = late.State;
            release.Complete();
            unmapper.Join();
            afterwards = late.State;
        });

        Assert.Equal((NotifierState.PendingInsert, NotifierState.Inserted), (during, afterwards));
    }

    [Fact]
    public void Insert_WhileInvalidationRuns_ReadBeginOfNewNotifierWaitsForIt()
    {
        using var m = TestMachine.Create();
        var k = m.Kernel;
        bool returnedDuring = true;
        bool retryAfter = true;

        m.Run(() =>
        {
            var entered = new Completion(k, "entered");
            var release = new Completion(k, "release");
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            var ops = new RecordingNotifierOps();
            m.Watch(a, Page, ops);
            ops.OnInvalidate = (_, _) =>
            {
                entered.Complete();
                release.Wait();
            };
            var unmapper = k.Scheduler.Spawn("unmapper", () => Assert.Equal(Errno.Ok, m.Mm.Madvise(a, Page, Advice.DontNeed)));
            entered.Wait();
            var late = m.Watch(a + Page, Page, new RecordingNotifierOps());
            bool returned = false;
            ulong seq = 0;
            var reader = k.Scheduler.Spawn("reader", () =>
            {
                seq = late.ReadBegin();
                returned = true;
            });
            k.Scheduler.Sleep(100_000);
            returnedDuring = returned;
            release.Complete();
            unmapper.Join();
            reader.Join();
            retryAfter = late.ReadRetry(seq);
        });

        Assert.Equal((false, false), (returnedDuring, retryAfter));
    }

    [Fact]
    public void Remove_AfterExit_Succeeds()
    {
        using var m = TestMachine.Create();
        MmuIntervalNotifier? n = null;

        m.Run(() =>
        {
            n = m.Watch(m.MapAnon(1), Page, new RecordingNotifierOps());
            m.Process.Exit();
            n.Remove();
        });

        Assert.Equal(NotifierState.Removed, n!.State);
    }
}
