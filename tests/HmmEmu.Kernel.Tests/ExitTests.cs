using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Kernel.Tests;

public sealed class ExitTests
{
    private const ulong Page = TestMachine.Page;

    [Fact]
    public void Exit_ProcessWithAnonymousPages_FreesThem()
    {
        using var m = TestMachine.Create();
        ulong freeBefore = 0, freeAfter = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(8);
            freeBefore = m.Kernel.Memory.FreePages;
            m.Touch(a, 8);
            m.Process.Exit();
            freeAfter = m.Kernel.Memory.FreePages;
        });

        Assert.Equal(freeBefore, freeAfter);
    }

    [Fact]
    public void Exit_WithNotifier_DeliversReleaseThenUnmap()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Touch(a, 1);
            m.Watch(a, Page, ops);
            m.Process.Exit();
        });

        Assert.Equal([NotifierEvent.Release, NotifierEvent.Unmap], ops.Ranges.Select(r => r.Event));
    }

    [Fact]
    public void Exit_Twice_SecondIsNoOp()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();

        m.Run(() =>
        {
            m.Watch(m.MapAnon(1), Page, ops);
            m.Process.Exit();
            m.Process.Exit();
        });

        Assert.Single(ops.Ranges, r => r.Event == NotifierEvent.Release);
    }

    [Fact]
    public void Exit_DriverHoldsUserReference_TearDownWaitsForLastMmPut()
    {
        using var m = TestMachine.Create();
        (bool AfterExit, bool AfterPut) exited = default;

        m.Run(() =>
        {
            m.MapAnon(1);
            Assert.True(m.Mm.MmGetNotZero());
            m.Process.Exit();
            bool afterExit = m.Mm.HasExited;
            m.Mm.MmPut();
            exited = (afterExit, m.Mm.HasExited);
        });

        Assert.Equal((false, true), exited);
    }

    [Fact]
    public void MmGetNotZero_AfterExit_ReturnsFalse()
    {
        using var m = TestMachine.Create();
        bool got = true;

        m.Run(() =>
        {
            m.Process.Exit();
            got = m.Mm.MmGetNotZero();
        });

        Assert.False(got);
    }
}
