using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;
using HmmEmu.Kernel;
using HmmEmu.Simulation;
using Xunit.Abstractions;
using static HmmEmu.Hardware.Tests.Edu.EduRegisters;

namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>The edu device and its driver end to end, on the bus, in both scheduler modes.</summary>
public sealed class EduDeviceTests(ITestOutputHelper output)
{
    private const ulong Page = 4096;
    private const ulong VaSrc = 0x10_0000_0000;
    private const ulong VaDst = 0x20_0000_0000;

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Probe_IdAndLiveness_ReadBackAsSpecified(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        uint id = 0, live = 0;

        m.Run(() =>
        {
            m.Start();
            id = m.Driver.Read32(Id);
            m.Driver.Write32(Liveness, 0x1234_5678);
            live = m.Driver.Read32(Liveness);
        });

        Assert.Equal(IdValue, id);
        Assert.Equal(~0x1234_5678u, live);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Copy_BusAddresses_MovesEveryByteAndCompletes(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        const int len = (3 * 4096) + 100;
        DmaCompletion result = default;
        byte[] expected = [], actual = [];

        m.Run(() =>
        {
            m.Start();
            var src = m.Pattern(len, 5);
            var dst = m.Driver.AllocBuffer(len);
            result = m.Driver.Copy(src.BusAddress, dst.BusAddress, len).Result;
            expected = src.Span.ToArray();
            actual = dst.Span.ToArray();
        });

        Assert.Equal(DmaStatus.Completed, result.Status);
        Assert.Equal((ulong)len, result.BytesDone);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Copy_ThroughDeviceMmu_ScatteredPagesLandWhereTheTableSays(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        const int pages = 4;
        DmaCompletion result = default;
        byte[] expected = [], actual = [];
        long walks = 0;

        m.Run(() =>
        {
            m.Start();
            var src = m.Pattern(pages * 4096, 9);
            var dst = m.Driver.AllocBuffer(pages * 4096);
            for (int i = 0; i < pages; i++)
            {
                Assert.Equal(Errno.Ok, m.Driver.Map(VaSrc + ((ulong)i * Page), src.BusAddress + ((ulong)i * Page), PtePermissions.Read));
                // Destination pages in reverse order: device page i is bus page pages-1-i.
                Assert.Equal(Errno.Ok, m.Driver.Map(VaDst + ((ulong)i * Page), dst.BusAddress + ((ulong)(pages - 1 - i) * Page), PtePermissions.ReadWrite));
            }
            result = m.Driver.Copy(VaSrc, VaDst, pages * 4096, EduDriver.Context).Result;
            expected = src.Span.ToArray();
            var d = dst.Span;
            actual = new byte[pages * 4096];
            for (int i = 0; i < pages; i++)
                d.Slice((pages - 1 - i) * 4096, 4096).CopyTo(actual.AsSpan(i * 4096));
            walks = m.Device.Mmu.Stats.Walks;
        });

        Assert.Equal(DmaStatus.Completed, result.Status);
        Assert.Equal(expected, actual);
        Assert.Equal(2 * pages, walks);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Copy_ThroughDeviceMmuWithEveryPageCached_JoinsOnlyPagesThatFollowInMemory_AndTranslatesEachOnce(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        const int pages = 32, offset = 100, length = (pages * 4096) - 300;
        // Destination pages 8..11 in reverse order and page 20 elsewhere; the rest follow each other in memory.
        static int DstPage(int i) => i is >= 8 and <= 11 ? 19 - i : i == 20 ? pages : i;
        DmaCompletion cold = default, warm = default;
        byte[] expected = [], coldCopy = [], warmCopy = [];
        long hits = 0, misses = 0, walks = 0;

        m.Run(() =>
        {
            m.Start();
            var src = m.Pattern(pages * 4096, 5);
            var dst = m.Driver.AllocBuffer((pages + 1) * 4096);
            for (int i = 0; i < pages; i++)
            {
                Assert.Equal(Errno.Ok, m.Driver.Map(VaSrc + ((ulong)i * Page), src.BusAddress + ((ulong)i * Page), PtePermissions.Read));
                Assert.Equal(Errno.Ok, m.Driver.Map(VaDst + ((ulong)i * Page), dst.BusAddress + ((ulong)DstPage(i) * Page), PtePermissions.ReadWrite));
            }
            byte[] InDeviceOrder()
            {
                var bytes = new byte[pages * 4096];
                for (int i = 0; i < pages; i++)
                    dst.Span.Slice(DstPage(i) * 4096, 4096).CopyTo(bytes.AsSpan(i * 4096));
                return bytes;
            }
            cold = m.Driver.Copy(VaSrc + offset, VaDst + offset, length, EduDriver.Context).Result;
            coldCopy = InDeviceOrder();
            dst.Span.Clear();
            var before = m.Device.Mmu.Stats;
            warm = m.Driver.Copy(VaSrc + offset, VaDst + offset, length, EduDriver.Context).Result;
            var after = m.Device.Mmu.Stats;
            warmCopy = InDeviceOrder();
            (hits, misses, walks) = (after.Hits - before.Hits, after.Misses - before.Misses, after.Walks - before.Walks);
            expected = new byte[pages * 4096];
            src.Span.Slice(offset, length).CopyTo(expected.AsSpan(offset));
        });

        Assert.Equal(DmaStatus.Completed, cold.Status);
        Assert.Equal(DmaStatus.Completed, warm.Status);
        Assert.Equal(expected, coldCopy);
        Assert.Equal(expected, warmCopy);
        // Every page of both sides translated once, from the TLB, whether alone or joined to a run.
        Assert.Equal(2 * pages, hits);
        Assert.Equal(0, misses);
        Assert.Equal(0, walks);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Copy_UnmappedDestinationPage_CompletionReportsNotPresentWithFaultAddress(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        DmaCompletion result = default;
        long errorInterrupts = 0;

        m.Run(() =>
        {
            m.Start();
            var src = m.Pattern(2 * 4096, 1);
            var dst = m.Driver.AllocBuffer(2 * 4096);
            Assert.Equal(Errno.Ok, m.Driver.Map(VaSrc, src.BusAddress, PtePermissions.Read));
            Assert.Equal(Errno.Ok, m.Driver.Map(VaSrc + Page, src.BusAddress + Page, PtePermissions.Read));
            Assert.Equal(Errno.Ok, m.Driver.Map(VaDst, dst.BusAddress, PtePermissions.ReadWrite));
            result = m.Driver.Copy(VaSrc, VaDst, 2 * 4096, EduDriver.Context).Result;
            // The engine raises the error cause just after the completion cause: wait for it, then for stragglers.
            m.WaitFor(() => m.Driver.ErrorInterrupts > 0, "the error interrupt");
            m.Bus.SynchronizeInterrupts();
            errorInterrupts = m.Driver.ErrorInterrupts;
        });

        Assert.Equal(DmaStatus.NotPresent, result.Status);
        Assert.Equal(Access.Write, result.FaultAccess);
        Assert.Equal(VaDst + Page, result.FaultAddress);
        Assert.Equal(Page, result.BytesDone);
        Assert.Equal(1, errorInterrupts);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Unmap_WhileDmaHoldsTheTranslation_InvalidationDoneOnlyAfterDmaDrained(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        const int pages = 16;
        Errno unmapped = Errno.EIO;
        int unmapReturned = 0;
        bool returnedWhileDmaHeld = true;
        long pollsWhileHeld = 0, bytesWhenDone = -1;
        DmaCompletion result = default;
        byte[] expected = [], actual = [];

        m.Run(() =>
        {
            m.Start();
            var src = m.Pattern(pages * 4096, 3);
            var dst = m.Driver.AllocBuffer(pages * 4096);
            for (int i = 0; i < pages; i++)
            {
                m.Driver.Map(VaSrc + ((ulong)i * Page), src.BusAddress + ((ulong)i * Page), PtePermissions.Read);
                m.Driver.Map(VaDst + ((ulong)i * Page), dst.BusAddress + ((ulong)i * Page), PtePermissions.ReadWrite);
            }
            // Two translations per page: hold the transfer before page 3, with pages 0..2 translated and in use.
            m.Device.Translator.ArmGate(translationsBefore: 6);
            var request = m.Driver.Submit(DmaDescriptor.Copy(VaSrc, VaDst, pages * 4096, 0, DmaFlags.InterruptOnCompletion, EduDriver.Context));
            m.WaitFor(() => m.Device.Translator.GateHeld, "the DMA to reach the gate");

            var unmapper = m.Scheduler.Spawn("unmap", () =>
            {
                unmapped = m.Driver.Unmap(VaSrc);
                bytesWhenDone = m.Device.Engine.Stats.Bytes;
                Volatile.Write(ref unmapReturned, 1);
            });
            m.WaitFor(() => m.Driver.InvalidationPolls >= 3, "the driver to poll TLB_STATUS");
            pollsWhileHeld = m.Driver.InvalidationPolls;
            returnedWhileDmaHeld = Volatile.Read(ref unmapReturned) != 0;
            m.Device.Translator.ReleaseGate();
            unmapper.Join();
            request.Wait();
            result = request.Result;
            expected = src.Span.ToArray();
            actual = dst.Span.ToArray();
        });

        Assert.False(returnedWhileDmaHeld);
        Assert.True(pollsWhileHeld >= 3);
        Assert.Equal(Errno.Ok, unmapped);
        Assert.Equal(pages * 4096L, bytesWhenDone);
        Assert.Equal(DmaStatus.Completed, result.Status);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Reset_DuringDma_AbortsItAndTheNextCopySucceeds(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        const int len = 64 * 4096;
        DmaCompletion aborted = default, next = default;
        bool prefixCopied = false;
        byte[] expected = [], actual = [];

        m.Run(() =>
        {
            m.Start();
            var src = m.Pattern(len, 11);
            var dst = m.Driver.AllocBuffer(len);
            m.Device.Translator.ArmGate(translationsBefore: 4);
            var request = m.Driver.Submit(DmaDescriptor.Copy(src.BusAddress, dst.BusAddress, len, 0, DmaFlags.InterruptOnCompletion));
            m.WaitFor(() => m.Device.Translator.GateHeld, "the DMA to reach the gate");
            m.Driver.Write32(Control, ControlEnable | ControlReset);
            m.Device.Translator.ReleaseGate();
            request.Wait();
            aborted = request.Result;
            int done = (int)aborted.BytesDone;
            prefixCopied = src.Span[..done].SequenceEqual(dst.Span[..done]);
            // A reset aborts whatever is pending when the engine takes it: let it finish before the next copy.
            m.WaitFor(() => (m.Driver.Read32(Status) & StatusResetPending) == 0, "the reset to finish");

            dst.Span.Clear();
            next = m.Driver.Copy(src.BusAddress, dst.BusAddress, len).Result;
            expected = src.Span.ToArray();
            actual = dst.Span.ToArray();
        });

        Assert.Equal(DmaStatus.Aborted, aborted.Status);
        Assert.InRange(aborted.BytesDone, 1UL, len - 1UL);
        Assert.True(prefixCopied);
        Assert.Equal(DmaStatus.Completed, next.Status);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Msix_DmaVectorMaskedAtCompletion_InterruptReplayedOnceOnUnmask(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        bool finishedWhileMasked = true;
        ulong pendingWhileMasked = 0;
        long handledWhileMasked = -1, handledAfter = -1, replayed = -1;
        DmaCompletion result = default;

        m.Run(() =>
        {
            m.Start();
            var src = m.Pattern(4096, 2);
            var dst = m.Driver.AllocBuffer(4096);
            m.Driver.MaskVector(VectorDma, masked: true);
            var request = m.Driver.Submit(DmaDescriptor.Copy(src.BusAddress, dst.BusAddress, 4096, 0, DmaFlags.InterruptOnCompletion));
            // The record is posted first, then the cause raised: wait for the pending bit the masked raise sets.
            m.WaitFor(() => m.Driver.Read64(MsixPba) != 0, "the masked completion interrupt");
            m.Bus.SynchronizeInterrupts();
            finishedWhileMasked = request.IsFinished;
            pendingWhileMasked = m.Driver.Read64(MsixPba);
            handledWhileMasked = m.Driver.DmaInterrupts;

            m.Driver.MaskVector(VectorDma, masked: false);
            request.Wait();
            m.Bus.SynchronizeInterrupts();
            result = request.Result;
            handledAfter = m.Driver.DmaInterrupts;
            replayed = m.Device.Msix.Replayed;
        });

        Assert.False(finishedWhileMasked);
        Assert.Equal(1UL << VectorDma, pendingWhileMasked);
        Assert.Equal(0, handledWhileMasked);
        Assert.Equal(1, handledAfter);
        Assert.Equal(1, replayed);
        Assert.Equal(DmaStatus.Completed, result.Status);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void FunctionLevelReset_ThroughBusDuringDma_RegistersResetDmaAbortedDriverRecovers(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        const int len = 64 * 4096;
        uint live = 0, control = 1, vectorControl = 0;
        ulong sqBase = 1, pt = 1;
        Errno recovered = Errno.EIO;
        (bool Lost, DmaStatus Status) inFlight = default;
        DmaCompletion next = default;
        byte[] expected = [], actual = [];

        m.Run(() =>
        {
            m.Start();
            var src = m.Pattern(len, 13);
            var dst = m.Driver.AllocBuffer(len);
            m.Driver.Write32(Liveness, 0xAA);
            m.Device.Translator.ArmGate(translationsBefore: 2);
            var request = m.Driver.Submit(DmaDescriptor.Copy(src.BusAddress, dst.BusAddress, len, 0, DmaFlags.InterruptOnCompletion));
            m.WaitFor(() => m.Device.Translator.GateHeld, "the DMA to reach the gate");
            var flr = m.Scheduler.Spawn("flr", () => m.Bus.FunctionLevelReset(EduMachine.Slot));
            m.WaitFor(() => m.Device.Engine.ResetPending, "the reset to reach the engine");
            m.Device.Translator.ReleaseGate();
            flr.Join();

            live = m.Driver.Read32(Liveness);
            control = m.Driver.Read32(Control);
            sqBase = m.Driver.Read64(SqBase);
            pt = m.Driver.Read64(PtBaseOf(EduDriver.Context));
            vectorControl = m.Driver.Read32(MsixVectorControl(VectorDma));

            recovered = m.Driver.ResetDone();
            request.Wait();
            inFlight = (request.Lost, request.Result.Status);
            dst.Span.Clear();
            next = m.Driver.Copy(src.BusAddress, dst.BusAddress, len).Result;
            expected = src.Span.ToArray();
            actual = dst.Span.ToArray();
        });

        Assert.Equal(~0u, live);
        Assert.Equal(0u, control);
        Assert.Equal(0UL, sqBase);
        Assert.Equal(0UL, pt);
        Assert.Equal(1u, vectorControl);
        Assert.Equal(Errno.Ok, recovered);
        Assert.Equal((false, DmaStatus.Aborted), inFlight);
        Assert.Equal(DmaStatus.Completed, next.Status);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Write_RingBaseWhileEnabled_RefusedWithErrorInterruptAndDeviceStillCopies(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        ulong before = 0, after = 1;
        long refused = 0, errors = 0;
        DmaCompletion result = default;

        m.Run(() =>
        {
            m.Start();
            before = m.Driver.Read64(SqBase);
            m.Driver.Write64(SqBase, 0xdead_0000);
            after = m.Driver.Read64(SqBase);
            m.Bus.SynchronizeInterrupts();
            refused = m.Device.BadRegisterWrites;
            errors = m.Driver.ErrorInterrupts;
            var src = m.Pattern(4096, 4);
            var dst = m.Driver.AllocBuffer(4096);
            result = m.Driver.Copy(src.BusAddress, dst.BusAddress, 4096).Result;
        });

        Assert.Equal(before, after);
        Assert.Equal(1, refused);
        Assert.Equal(1, errors);
        Assert.Equal(DmaStatus.Completed, result.Status);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Read_UndefinedOffset_AllOnesBusErrorAndErrorInterrupt(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        uint value = 0, counted = 0;
        long errors = 0;

        m.Run(() =>
        {
            m.Start();
            value = m.Driver.Read32(0xFFC);
            m.Bus.SynchronizeInterrupts();
            errors = m.Driver.ErrorInterrupts;
            counted = m.Driver.Read32(EduRegisters.BusErrors);
        });

        Assert.Equal(~0u, value);
        Assert.Equal(1, errors);
        Assert.Equal(1u, counted);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Copy_MalformedPageTableBase_FailsWithBadTableThenWorksAfterRestore(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        DmaCompletion bad = default, good = default;
        Errno restored = Errno.EIO;

        m.Run(() =>
        {
            m.Start();
            var src = m.Pattern(4096, 6);
            var dst = m.Driver.AllocBuffer(4096);
            m.Driver.Map(VaSrc, src.BusAddress, PtePermissions.Read);
            m.Driver.Map(VaDst, dst.BusAddress, PtePermissions.ReadWrite);
            ulong root = m.Driver.Read64(PtBaseOf(EduDriver.Context));
            m.Driver.Write64(PtBaseOf(EduDriver.Context), root | (1UL << 8));   // a reserved bit
            bad = m.Driver.Copy(VaSrc, VaDst, 4096, EduDriver.Context).Result;
            restored = m.Driver.RestorePageTableBase();
            good = m.Driver.Copy(VaSrc, VaDst, 4096, EduDriver.Context).Result;
        });

        Assert.Equal(DmaStatus.BadTable, bad.Status);
        Assert.Equal(Errno.Ok, restored);
        Assert.Equal(DmaStatus.Completed, good.Status);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Invalidate_RangeOfZeroBytes_RefusedWithTlbError(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        Errno zero = Errno.Ok, all = Errno.EIO;

        m.Run(() =>
        {
            m.Start();
            zero = m.Driver.Invalidate(TlbCmdRange, EduDriver.Context, VaSrc, 0);
            all = m.Driver.Invalidate(TlbCmdAll, 0, 0, 0);
        });

        Assert.Equal(Errno.EINVAL, zero);
        Assert.Equal(Errno.Ok, all);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Remove_UnregisterDriver_FreesDmaMemoryAndVectorsAndDisablesDevice(SchedulerMode mode)
    {
        using var m = EduMachine.Create(mode);
        long pagesBound = 0, pagesAfter = -1;
        bool enabledAfter = true, boundAfter = true;

        m.Run(() =>
        {
            m.Start();
            var src = m.Pattern(4096, 8);
            m.Driver.Map(VaSrc, src.BusAddress, PtePermissions.Read);
            pagesBound = m.Bus.DmaPagesInUse;
            var dev = m.Driver.Dev!;
            m.Bus.UnregisterDriver(m.Driver);
            pagesAfter = m.Bus.DmaPagesInUse;
            enabledAfter = m.Device.IsEnabled;
            boundAfter = dev.IsBound;
        });

        Assert.True(pagesBound > 0);
        Assert.Equal(0, pagesAfter);
        Assert.False(enabledAfter);
        Assert.False(boundAfter);
    }

    [Fact]
    public void ToMarkdown_EduRegisterMap_HasARowForEveryRegister()
    {
        using var m = EduMachine.Create();
        var registers = m.Device.Bar0.Registers;

        string table = m.Device.Bar0.ToMarkdown();
        output.WriteLine(table);

        foreach (var r in registers)
            Assert.Contains($"| 0x{r.Offset:x4} | {r.Name} |", table, StringComparison.Ordinal);
        Assert.Equal(registers.Count, table.Split('\n').Count(l => l.StartsWith("| 0x", StringComparison.Ordinal)));
        foreach (var name in new[] { "ID", "LIVENESS", "CONTROL", "SQ_TAIL", "CQ_HEAD", "PT_BASE7", "TLB_CMD", "TLB_STATUS", "MSIX_VEC1", "MSIX_PBA0" })
            Assert.Contains($"| {name} |", table, StringComparison.Ordinal);
    }
}
