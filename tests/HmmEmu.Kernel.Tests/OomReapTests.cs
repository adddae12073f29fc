using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

public sealed class OomReapTests
{
    private const ulong Page = TestMachine.Page;
    private const int Pages = 4;

    /// <summary>Maps and fills four pages, watches them with <paramref name="ops"/>, and runs the OOM reaper once.</summary>
    private static (Errno Result, Pte[] Before, Pte[] After, int[] Values) Reap(TestMachine m, RecordingNotifierOps ops)
    {
        (Errno, Pte[], Pte[], int[]) result = default;
        m.Run(() =>
        {
            ulong a = m.MapAnon(Pages);
            m.Touch(a, Pages, firstValue: 100);
            m.Watch(a, Pages * Page, ops);
            var before = m.Ptes(a, Pages);
            var err = m.Mm.OomReap();
            var after = m.Ptes(a, Pages);
            var values = new int[Pages];
            if (err != Errno.Ok)
            {
                for (int i = 0; i < Pages; i++)
                    values[i] = m.Process.ReadInt32(a + ((ulong)i * Page));
            }
            result = (err, before, after, values);
        });
        return result;
    }

    [Fact]
    public void OomReap_NotifierRefusesNonBlockable_ReturnsEAGAIN()
    {
        using var m = TestMachine.Create();

        Assert.Equal(Errno.EAGAIN, Reap(m, new RecordingNotifierOps { RefuseNonBlockable = true }).Result);
    }

    [Fact]
    public void OomReap_NotifierRefusesNonBlockable_PtesUntouched()
    {
        using var m = TestMachine.Create();

        var (_, before, after, _) = Reap(m, new RecordingNotifierOps { RefuseNonBlockable = true });

        Assert.Equal(before, after);
    }

    [Fact]
    public void OomReap_NotifierRefusesNonBlockable_DataUntouched()
    {
        using var m = TestMachine.Create();

        var (_, _, _, values) = Reap(m, new RecordingNotifierOps { RefuseNonBlockable = true });

        Assert.Equal([100, 101, 102, 103], values);
    }

    [Fact]
    public void OomReap_NotifierRefusesNonBlockable_SequenceEvenAfterwards()
    {
        using var m = TestMachine.Create();

        Reap(m, new RecordingNotifierOps { RefuseNonBlockable = true });

        Assert.Equal(0UL, m.Mm.NotifierSeq & 1);
    }

    [Fact]
    public void OomReap_NotifierAccepts_ReturnsOk()
    {
        using var m = TestMachine.Create();

        Assert.Equal(Errno.Ok, Reap(m, new RecordingNotifierOps()).Result);
    }

    [Fact]
    public void OomReap_NotifierAccepts_PagesGone()
    {
        using var m = TestMachine.Create();

        var (_, _, after, _) = Reap(m, new RecordingNotifierOps());

        Assert.All(after, p => Assert.True(p.IsNone, $"expected pte_none, got {p}"));
    }

    [Fact]
    public void OomReap_NotifierAccepts_PagesFreed()
    {
        using var m = TestMachine.Create();
        ulong freeBefore = 0, freeAfter = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(Pages);
            freeBefore = m.Kernel.Memory.FreePages;
            m.Touch(a, Pages);
            Assert.Equal(Errno.Ok, m.Mm.OomReap());
            freeAfter = m.Kernel.Memory.FreePages;
        });

        Assert.Equal(freeBefore, freeAfter);
    }

    [Fact]
    public void OomReap_NotifierAccepts_CallbackSeesNonBlockableUnmapOfVma()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();

        Reap(m, ops);

        var range = Assert.Single(ops.Ranges);
        Assert.Equal((NotifierEvent.Unmap, false, Pages * Page), (range.Event, range.Blockable, range.End - range.Start));
    }

    [Fact]
    public void OomReap_CallbackTriesDriverLockWhileHeld_ReturnsEAGAIN()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            var driverLock = new KMutex(m.Kernel, "driver.lock");
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            m.Watch(a, Page, new RecordingNotifierOps { DriverLock = driverLock });
            var holder = m.Kernel.Scheduler.Spawn("holder", () =>
            {
                driverLock.Lock();
                m.Kernel.Scheduler.Sleep(100_000);
                driverLock.Unlock();
            });
            m.Kernel.Scheduler.Sleep(10_000);
            err = m.Mm.OomReap();
            holder.Join();
        });

        Assert.Equal(Errno.EAGAIN, err);
    }

    [Fact]
    public void OomReap_OneVmaRefused_OtherVmaStillReaped()
    {
        using var m = TestMachine.Create();
        (Errno Result, int Watched, int Other) outcome = default;

        m.Run(() =>
        {
            ulong watched = m.MapAnon(2);
            ulong other = m.Process.Map(2 * Page, Prot.Read | Prot.Exec, MapFlags.PrivateAnonymous);
            m.Touch(watched, 2);
            m.Process.ReadInt32(other);
            m.Process.ReadInt32(other + Page);
            m.Watch(watched, 2 * Page, new RecordingNotifierOps { RefuseNonBlockable = true });
            var err = m.Mm.OomReap();
            outcome = (err, m.Mm.CountPresent(watched, watched + (2 * Page)), m.Mm.CountPresent(other, other + (2 * Page)));
        });

        Assert.Equal((Errno.EAGAIN, 2, 0), outcome);
    }

    [Fact]
    public void OomReap_SharedMapping_Skipped()
    {
        using var m = TestMachine.Create();
        int present = 0;

        m.Run(() =>
        {
            ulong a = m.Process.Map(2 * Page, Prot.ReadWrite, MapFlags.SharedAnonymous);
            m.Touch(a, 2);
            Assert.Equal(Errno.Ok, m.Mm.OomReap());
            present = m.Mm.CountPresent(a, a + (2 * Page));
        });

        Assert.Equal(2, present);
    }

    [Fact]
    public void OomReap_MmapLockHeldForWrite_ReturnsEAGAIN()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            m.Touch(m.MapAnon(1), 1);
            using (m.Mm.MmapWriteLock())
                err = m.Mm.OomReap();
        });

        Assert.Equal(Errno.EAGAIN, err);
    }
}
