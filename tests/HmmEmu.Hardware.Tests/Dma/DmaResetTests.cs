using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Rings;

namespace HmmEmu.Hardware.Tests.Dma;

public sealed class DmaResetTests
{
    private const int Long = 2 << 20;

    [Fact]
    public void Reset_DuringLongTransfer_EveryDescriptorCompletesExactlyOnceOrIsAborted()
    {
        using var rig = DmaRig.Create(sqCount: 8, cqCount: 8);
        ulong src = rig.Alloc(512), dst = rig.Alloc(512);
        var all = new List<DmaCompletion>();

        rig.Run(() =>
        {
            for (int i = 0; i < 6; i++)
                rig.Submit(DmaDescriptor.Copy(src, dst, Long, cookie: (ulong)i));
            rig.WaitFor(() => rig.Engine.Stats.Bytes > Long / 2 && rig.Engine.Stats.Finished == 0, "mid-transfer");
            rig.Engine.Reset();
            rig.WaitFor(() => !rig.Engine.ResetPending, "reset done");
            all.AddRange(rig.TakeCompletions());
        });

        Assert.Equal(Enumerable.Range(0, 6).Select(i => (uint)i), all.Select(c => c.Index).Order());
        Assert.Equal(Enumerable.Range(0, 6).Select(i => (ulong)i), all.Select(c => c.Cookie).Order());
        Assert.Equal(DmaStatus.Aborted, all[0].Status);
        Assert.InRange(all[0].BytesDone, 1UL, (ulong)Long - 1);
        Assert.All(all.Skip(1), c => Assert.Equal(new DmaCompletion(c.Cookie, c.Index, DmaStatus.Aborted, 0, 0, 0), c));
        Assert.Equal(1, rig.Interrupts.ResetsDone);
    }

    [Fact]
    public void Reset_ThenNewDescriptor_CompletesNormally()
    {
        using var rig = DmaRig.Create(sqCount: 8, cqCount: 8);
        ulong src = rig.Alloc(512), dst = rig.Alloc(512);
        rig.Fill(src, 4096, i => (byte)i);
        DmaCompletion after = default;

        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.Copy(src, dst, Long, cookie: 1));
            rig.Submit(DmaDescriptor.Copy(src, dst, Long, cookie: 2));
            rig.WaitFor(() => rig.Engine.Stats.Bytes > 0, "transfer started");
            rig.Engine.Reset();
            rig.WaitFor(() => !rig.Engine.ResetPending, "reset done");
            rig.TakeCompletions();
            rig.Submit(DmaDescriptor.Copy(src, dst + 8192, 4096, cookie: 3));
            after = rig.WaitForCompletions(1)[0];
        });

        Assert.Equal(new DmaCompletion(3, 2, DmaStatus.Completed, 0, 4096, 0), after);
        Assert.Equal(rig.Read(src, 4096), rig.Read(dst + 8192, 4096));
    }

    [Fact]
    public void Reset_StoppedSubmissionRing_AbortsPendingEntriesAndRestartsTheRing()
    {
        using var rig = DmaRig.Create(sqCount: 8, cqCount: 8);
        ulong buf = rig.Alloc(1);
        List<DmaCompletion> aborted = [];

        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.Copy(buf, buf + 2048, 16, cookie: 1), ring: false);
            rig.Submit(DmaDescriptor.Copy(buf, buf + 2048, 16, cookie: 2), ring: false);
            rig.Engine.Doorbell(20);   // bad index: the ring stops with nothing started
            rig.RingDoorbell();        // valid producer, recorded by the stopped ring
            rig.Engine.Reset();
            rig.WaitFor(() => !rig.Engine.ResetPending, "reset done");
            aborted = rig.TakeCompletions();
        });

        Assert.Equal([1UL, 2UL], aborted.Select(c => c.Cookie));
        Assert.All(aborted, c => Assert.Equal(DmaStatus.Aborted, c.Status));
        Assert.Equal(RingState.Running, rig.Engine.Submission.Status.State);
    }

    [Fact]
    public void Reset_MoreAbortsThanFreeCompletionSlots_CountsAndReportsTheOverflow()
    {
        using var rig = DmaRig.Create(sqCount: 8, cqCount: 2);
        ulong buf = rig.Alloc(1);

        rig.Run(() =>
        {
            rig.Engine.Doorbell(99); // stop the ring so that nothing runs before the reset
            for (int i = 0; i < 5; i++)
                rig.Submit(DmaDescriptor.Copy(buf, buf + 2048, 16, cookie: (ulong)i));
            rig.Engine.Reset();
            rig.WaitFor(() => !rig.Engine.ResetPending, "reset done");
        });

        Assert.Equal(3L, rig.Engine.Stats.DroppedCompletions);
        Assert.Equal(RingError.Overflow, rig.Engine.Completion.Status.Error);
        Assert.Equal(5L, rig.Engine.Stats.Aborted);
    }

    [Fact]
    public void Shutdown_WithQueuedDescriptors_AbortsEachExactlyOnce()
    {
        using var rig = DmaRig.Create(sqCount: 8, cqCount: 8);
        ulong src = rig.Alloc(512), dst = rig.Alloc(512);
        List<DmaCompletion> all = [];

        rig.Run(() =>
        {
            for (int i = 0; i < 4; i++)
                rig.Submit(DmaDescriptor.Copy(src, dst, Long, cookie: (ulong)i));
            rig.WaitFor(() => rig.Engine.Stats.Bytes > 0, "transfer started");
            rig.Engine.Shutdown();
            all = rig.TakeCompletions();
        });

        Assert.Equal([0UL, 1UL, 2UL, 3UL], all.Select(c => c.Cookie));
        Assert.All(all, c => Assert.Equal(DmaStatus.Aborted, c.Status));
        Assert.False(rig.Engine.Doorbell(5));
    }

    [Fact]
    public void Dispose_FromHostWithQueuedDescriptors_AbortsEachExactlyOnce()
    {
        using var rig = DmaRig.Create(sqCount: 8, cqCount: 8);
        ulong buf = rig.Alloc(1);
        for (int i = 0; i < 3; i++)
            rig.Submit(DmaDescriptor.Copy(buf, buf + 2048, 16, cookie: (ulong)i));

        rig.Engine.Dispose();

        Assert.Equal(3L, rig.Engine.Stats.Aborted);
        Assert.Equal(3, rig.TakeCompletions().Count);
    }
}
