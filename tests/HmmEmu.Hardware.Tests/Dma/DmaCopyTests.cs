using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Translation;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Dma;

public sealed class DmaCopyTests
{
    private static byte Pattern(int i) => (byte)((i * 7) + (i >> 8) + 1);

    [Fact]
    public void Copy_UnalignedAcrossPageBoundaries_CopiesExactlyTheRequestedBytes()
    {
        using var rig = DmaRig.Create();
        ulong src = rig.Alloc(8), dst = rig.Alloc(8);
        const int length = (3 * 4096) + 77;
        rig.Fill(src, 8 * 4096, Pattern);
        DmaCompletion done = default;

        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.Copy(src + 13, dst + 4001, length, cookie: 0xC0));
            done = rig.WaitForCompletions(1)[0];
        });

        Assert.Equal(new DmaCompletion(0xC0, 0, DmaStatus.Completed, 0, length, 0), done);
        var got = rig.Read(dst, 8 * 4096);
        for (int i = 0; i < got.Length; i++)
        {
            byte expected = i >= 4001 && i < 4001 + length ? Pattern(i - 4001 + 13) : (byte)0;
            Assert.Equal(expected, got[i]);
        }
    }

    [Theory]
    [InlineData(0x5C)]
    [InlineData(0x00)]                          // zero takes the memset path
    public void Fill_UnalignedAcrossPageBoundaries_WritesTheByteExactlyOverTheRequestedBytes(int value)
    {
        using var rig = DmaRig.Create();
        ulong dst = rig.Alloc(4);
        const int length = (2 * 4096) + 300;
        rig.Fill(dst, 4 * 4096, i => 0xA7);

        rig.Run(() =>
        {
            rig.Submit(new DmaDescriptor((ulong)value, dst + 1000, length, DmaFlags.Fill, 0, 7));
            Assert.Equal(DmaStatus.Completed, rig.WaitForCompletions(1)[0].Status);
        });

        var got = rig.Read(dst, 4 * 4096);
        for (int i = 0; i < got.Length; i++)
            Assert.Equal(i >= 1000 && i < 1000 + length ? (byte)value : (byte)0xA7, got[i]);
    }

    [Fact]
    public void Copy_TwoMiBContiguous_CopiesEveryByte()
    {
        using var rig = DmaRig.Create();
        ulong src = rig.Alloc(512), dst = rig.Alloc(512);
        const int length = 2 << 20;
        rig.Fill(src, length, Pattern);

        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.Copy(src, dst, length, cookie: 1));
            rig.WaitForCompletions(1);
        });

        Assert.Equal(rig.Read(src, length), rig.Read(dst, length));
        Assert.Equal(length, rig.Engine.Stats.Bytes);
    }

    [Fact]
    public void Copy_SystemToVramAndBackThroughTranslator_RoundTripsTheData()
    {
        var vram = new VramPort(2UL << 20);
        FakeTranslator? translator = null;
        using var rig = DmaRig.Create(translator: port => translator = new FakeTranslator(), vram: vram);
        ulong src = rig.Alloc(4), back = rig.Alloc(4);
        const ulong vaSrc = 0x10_0000, vaVram = 0x20_0000, vaBack = 0x30_0000;
        translator!.Map(vaSrc, Aperture.System, src, 4);
        translator.Map(vaVram, Aperture.Vram, 0x4_0000, 4);
        translator.Map(vaBack, Aperture.System, back, 4);
        const int length = (2 * 4096) + 500;
        rig.Fill(src + 100, length, Pattern);
        List<DmaCompletion> done = [];

        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.Copy(vaSrc + 100, vaVram + 3000, length, cookie: 1, asid: 5));
            rig.Submit(DmaDescriptor.Copy(vaVram + 3000, vaBack + 7, length, cookie: 2, asid: 5));
            done = rig.WaitForCompletions(2);
        });

        Assert.All(done, c => Assert.Equal(DmaStatus.Completed, c.Status));
        var inVram = new byte[length];
        Assert.True(vram.TryRead(0x4_0000 + 3000, inVram));
        Assert.Equal(rig.Read(src + 100, length), inVram);
        Assert.Equal(inVram, rig.Read(back + 7, length));
    }

    [Fact]
    public void Copy_ScatteredPhysicalPages_CopiesEachPageFromItsOwnFrame()
    {
        FakeTranslator? translator = null;
        using var rig = DmaRig.Create(translator: _ => translator = new FakeTranslator());
        ulong src = rig.Alloc(8), dst = rig.Alloc(8);
        const ulong va = 0x80_0000, vaDst = 0x90_0000;
        for (int i = 0; i < 8; i++)
        {
            translator!.Map(va + ((ulong)i * 4096), Aperture.System, src + ((ulong)(7 - i) * 4096), 1); // reversed
            translator.Map(vaDst + ((ulong)i * 4096), Aperture.System, dst + ((ulong)i * 4096), 1);
        }
        rig.Fill(src, 8 * 4096, Pattern);

        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.Copy(va, vaDst, 8 * 4096, cookie: 1));
            rig.WaitForCompletions(1);
        });

        for (int i = 0; i < 8; i++)
            Assert.Equal(rig.Read(src + ((ulong)(7 - i) * 4096), 4096), rig.Read(dst + ((ulong)i * 4096), 4096));
    }

    [Fact]
    public void Fill_Destination_IsFilledWithTheByteAndNothingElse()
    {
        using var rig = DmaRig.Create();
        ulong dst = rig.Alloc(2);

        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.FillBytes(dst + 10, 0x5A, 5000, cookie: 3));
            rig.WaitForCompletions(1);
        });

        var got = rig.Read(dst, 8192);
        Assert.All(got.AsSpan(10, 5000).ToArray(), b => Assert.Equal(0x5A, b));
        Assert.Equal(0, got[9]);
        Assert.Equal(0, got[5010]);
    }

    [Fact]
    public void Completion_OnlyFlaggedDescriptors_RaiseACompletionInterruptEach()
    {
        using var rig = DmaRig.Create();
        ulong src = rig.Alloc(1), dst = rig.Alloc(1);

        rig.Run(() =>
        {
            for (int i = 0; i < 5; i++)
            {
                var flags = i % 2 == 0 ? DmaFlags.InterruptOnCompletion : DmaFlags.None;
                rig.Submit(DmaDescriptor.Copy(src, dst, 64, cookie: (ulong)i, flags));
            }
            rig.WaitForCompletions(5);
        });

        Assert.Equal(3, rig.Interrupts.Completions);
        Assert.Equal(0, rig.Interrupts.Errors);
    }

    [Fact]
    public void Completion_RecordsEchoCookieAndIndexInSubmissionOrderAcrossWraps()
    {
        using var rig = DmaRig.Create(sqCount: 4, cqCount: 4);
        ulong src = rig.Alloc(1), dst = rig.Alloc(1);
        var all = new List<DmaCompletion>();

        rig.Run(() =>
        {
            for (int i = 0; i < 40; i++)
            {
                rig.Submit(DmaDescriptor.Copy(src, dst, 128, cookie: 1000 + (ulong)i));
                all.AddRange(rig.WaitForCompletions(1));
            }
        });

        Assert.Equal(Enumerable.Range(0, 40).Select(i => 1000UL + (ulong)i), all.Select(c => c.Cookie));
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (uint)(i % 8)), all.Select(c => c.Index));
    }

    [Fact]
    public void Engine_CompletionRingFull_WaitsForDriverInsteadOfOverflowing()
    {
        using var rig = DmaRig.Create(sqCount: 8, cqCount: 2);
        ulong src = rig.Alloc(1), dst = rig.Alloc(1);
        int firstBatch = 0;
        var all = new List<DmaCompletion>();

        rig.Run(() =>
        {
            for (int i = 0; i < 6; i++)
                rig.Submit(DmaDescriptor.Copy(src, dst, 64, cookie: (ulong)i));
            rig.WaitFor(() => rig.Available == 2, "two completions");
            rig.Kernel.Scheduler.Sleep(100_000); // plenty of time for the engine to overrun, if it would
            firstBatch = rig.Available;
            while (all.Count < 6)
                all.AddRange(rig.WaitForCompletions(1));
        });

        Assert.Equal(2, firstBatch);
        Assert.Equal(Enumerable.Range(0, 6).Select(i => (ulong)i), all.Select(c => c.Cookie));
        Assert.Equal(0L, rig.Engine.Stats.DroppedCompletions);
        Assert.True(rig.Engine.Stats.CompletionRingStalls > 0);
    }

    [Fact]
    public void Fence_AfterFailedDescriptor_IsSkippedWithoutMovingData()
    {
        using var rig = DmaRig.Create();
        ulong src = rig.Alloc(1), dst = rig.Alloc(1);
        rig.Fill(src, 64, Pattern);
        List<DmaCompletion> done = [];

        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.Copy(src, dst, 0, cookie: 1));                    // bad: zero length
            rig.Submit(DmaDescriptor.Copy(src, dst, 64, cookie: 2, DmaFlags.Fence));
            done = rig.WaitForCompletions(2);
        });

        Assert.Equal(DmaStatus.Skipped, done[1].Status);
        Assert.Equal(0, rig.Read(dst, 1)[0]);
    }

    [Fact]
    public void Copy_ThreadedMode_CompletesEveryDescriptorWithCorrectData()
    {
        using var rig = DmaRig.Create(mode: SchedulerMode.Threaded, sqCount: 64, cqCount: 64);
        ulong src = rig.Alloc(16), dst = rig.Alloc(16);
        rig.Fill(src, 16 * 4096, Pattern);
        var all = new List<DmaCompletion>();

        rig.Run(() =>
        {
            for (int i = 0; i < 16; i++)
                rig.Submit(DmaDescriptor.Copy(src + ((ulong)i * 4096) + 1, dst + ((ulong)i * 4096) + 1, 4095, cookie: (ulong)i));
            while (all.Count < 16)
                all.AddRange(rig.WaitForCompletions(1));
        });

        Assert.Equal(Enumerable.Range(0, 16).Select(i => (ulong)i), all.Select(c => c.Cookie));
        Assert.All(all, c => Assert.Equal(DmaStatus.Completed, c.Status));
        for (ulong page = 0; page < 16; page++)
            Assert.Equal(rig.Read(src + (page * 4096) + 1, 4095), rig.Read(dst + (page * 4096) + 1, 4095));
    }

    [Fact]
    public void CompletionRingFull_ThreadedMode_EveryConsumeThatFreesRoomRestartsTheEngine()
    {
        // Two completion slots behind eight submission slots: the worker stops for room again and again, and only the
        // driver's consume restarts it (CompletionConsumed kicks only a worker that asked for room). A lost wake-up
        // leaves the rig waiting until it gives up with a TimeoutException.
        const int Total = 4000;
        using var rig = DmaRig.Create(mode: SchedulerMode.Threaded, sqCount: 8, cqCount: 2);
        ulong src = rig.Alloc(1), dst = rig.Alloc(1);
        var all = new List<DmaCompletion>();
        int submitted = 0;

        rig.Run(() =>
        {
            while (all.Count < Total)
            {
                while (submitted < Total && submitted - all.Count < 8)
                    rig.Submit(DmaDescriptor.Copy(src, dst, 64, cookie: (ulong)submitted++));
                all.AddRange(rig.WaitForCompletions(1));
            }
        });

        Assert.Equal(Enumerable.Range(0, Total).Select(i => (ulong)i), all.Select(c => c.Cookie));
        Assert.All(all, c => Assert.Equal(DmaStatus.Completed, c.Status));
        Assert.Equal(0L, rig.Engine.Stats.DroppedCompletions);
        Assert.True(rig.Engine.Stats.CompletionRingStalls > 0, "the completion ring never filled: the test did not exercise the stall");
    }

    [Fact]
    public void Engine_SameSeed_SameTraceHash()
    {
        static ulong RunOnce(ulong seed)
        {
            using var rig = DmaRig.Create(seed: seed, options: new DmaEngineOptions { ChargeQuantumBytes = 4096 });
            ulong src = rig.Alloc(16), dst = rig.Alloc(16);
            rig.Run(() =>
            {
                for (int i = 0; i < 10; i++)
                {
                    rig.Submit(DmaDescriptor.Copy(src, dst + (ulong)i, 40_000, cookie: (ulong)i, DmaFlags.InterruptOnCompletion));
                    rig.Kernel.Scheduler.Sleep(700);
                    if (i == 6)
                        rig.Engine.Reset();
                }
                rig.WaitFor(() => rig.Engine.Stats.Finished == 10 && !rig.Engine.ResetPending, "all completions");
            });
            return rig.Kernel.Trace.Hash;
        }

        Assert.Equal(RunOnce(9), RunOnce(9));
    }
}
