using System.Runtime.InteropServices;
using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Simulation;
using static HmmEmu.Gpu.GpuRegisters;

namespace HmmEmu.Gpu.Model.Tests;

/// <summary>TLB invalidation, the copy engine and reset.</summary>
public sealed class GpuEngineTests
{
    private const ulong Va = 0x40_0000_0000;
    private const ulong Page = GpuTestMachine.Page;

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Tlbi_WhileKernelChunkUsesTheTranslation_CompletesOnlyAfterTheChunkEnded(SchedulerMode mode)
    {
        using var m = GpuTestMachine.Create(mode);
        uint completedWhileHeld = 99, statusWhileHeld = 99, completedAfter = 0, issued = 0;
        bool done = false;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            var a = DeviceArray.Create(m, 1, Va, 4 * 4096, vram: false);
            // Step 1 starts the command; step 2 is page 0's span; hold page 1's span inside its use.
            m.Model.ArmComputeGate(1);
            ulong fence = m.Launch(1, GpuKernel.Fill, Va, 4 * 1024, 0xAB);
            m.WaitFor(() => m.Model.ComputeGateHeld, "the chunk to reach the gate");
            m.W32(TlbiContext, 1);
            m.W64(TlbiAddress, Va + Page);
            m.W64(TlbiSize, Page);
            m.W32(TlbiTrigger, TlbiRange);
            issued = m.R32(TlbiIssued);
            m.Idle(1_000_000);
            completedWhileHeld = m.R32(TlbiCompleted);
            statusWhileHeld = m.R32(TlbiStatus);
            m.Model.ReleaseComputeGate();
            m.WaitFor(() => m.R32(TlbiCompleted) == 1, "the invalidation");
            completedAfter = m.R32(TlbiCompleted);
            m.WaitFence(fence, "the fence");
            done = MemoryMarshal.Cast<byte, uint>(a.Span).IndexOfAnyExcept(0xABu) < 0;
            m.WaitFor(() => (m.R32(IntStatus) & IntTlbDone) != 0, "TLB_DONE");
        });

        Assert.Equal(1u, issued);
        Assert.Equal(0u, completedWhileHeld);
        Assert.Equal(0u, statusWhileHeld & TlbiStatusDone);
        Assert.Equal(1u, completedAfter);
        Assert.True(done);
    }

    [Fact]
    public void Tlbi_AfterPteChange_KernelSeesTheNewPage()
    {
        using var m = GpuTestMachine.Create();
        bool oldUntouched = false, newFilled = false;
        uint status = 0;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            var a = DeviceArray.Create(m, 1, Va, 4096, vram: false);
            var b = DeviceArray.Create(m, 1, Va + 0x100_0000, 4096, vram: true, vramOffset: 0x40_0000, map: false);
            m.WaitFence(m.Launch(1, GpuKernel.Fill, Va, 1024, 1), "first fill");   // caches the translation
            m.Map(1, Va, Aperture.Vram, b.Address, PtePermissions.ReadWrite);        // "migrate" the page
            m.W32(TlbiContext, 1);
            m.W32(TlbiTrigger, TlbiContextAll);
            m.WaitFor(() => (m.R32(TlbiStatus) & TlbiStatusDone) != 0, "the invalidation");
            m.WaitFence(m.Launch(1, GpuKernel.Fill, Va, 1024, 2), "second fill");
            oldUntouched = MemoryMarshal.Cast<byte, uint>(a.Span).IndexOfAnyExcept(1u) < 0;
            newFilled = MemoryMarshal.Cast<byte, uint>(b.Span).IndexOfAnyExcept(2u) < 0;
            m.W32(TlbiTrigger, 9);
            status = m.R32(TlbiStatus);
        });

        Assert.True(oldUntouched);
        Assert.True(newFilled);
        Assert.Equal(TlbiStatusDone | TlbiStatusError, status);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void CopyEngine_PhysicalVramAndSystem_RoundTripsTheBytes(SchedulerMode mode)
    {
        using var m = GpuTestMachine.Create(mode);
        DmaCompletion toVram = default, back = default;
        byte[] expected = [], inVram = [], actual = [];
        long copyVectors = 0;

        m.Run(() =>
        {
            m.Start();
            const int len = (3 * 4096) + 100;
            var src = m.Alloc(4 * Page);
            var dst = m.Alloc(4 * Page);
            GpuKernelTests.Pattern(src.Span, 9);
            toVram = m.Copy(GpuCopyAddress.System(src.BusAddress), GpuCopyAddress.Vram(0x30_0000), len);
            back = m.Copy(GpuCopyAddress.Vram(0x30_0000), GpuCopyAddress.System(dst.BusAddress), len);
            expected = src.Span[..len].ToArray();
            m.Model.Vram.TryGetSpan(0x30_0000, len, write: false, out var v);
            inVram = v.ToArray();
            actual = dst.Span[..len].ToArray();
            m.Bus.SynchronizeInterrupts();
            copyVectors = m.VectorCount(VectorCopy);
        });

        Assert.Equal(DmaStatus.Completed, toVram.Status);
        Assert.Equal(DmaStatus.Completed, back.Status);
        Assert.Equal(expected, inVram);
        Assert.Equal(expected, actual);
        Assert.True(copyVectors >= 1);
    }

    [Fact]
    public void CopyEngine_VirtualContext_TranslatesThroughPageTableAndReportsFaults()
    {
        using var m = GpuTestMachine.Create();
        DmaCompletion ok = default, fault = default;
        bool copied = false;
        uint status = 0;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(3);
            var src = DeviceArray.Create(m, 3, Va, 2 * 4096, vram: false);
            var dst = DeviceArray.Create(m, 3, Va + 0x10_0000, 2 * 4096, vram: true, vramOffset: 0x10_0000);
            GpuKernelTests.Pattern(src.Span, 3);
            ok = m.Copy(Va, Va + 0x10_0000, 2 * 4096, ctx: 3);
            copied = src.Span.SequenceEqual(dst.Span);
            fault = m.Copy(Va, Va + 0x20_0000, 4096, ctx: 3);
            m.WaitFor(() => (m.R32(Status) & StatusCopyError) != 0, "COPY_ERROR");
            status = m.R32(Status);
        });

        Assert.Equal(DmaStatus.Completed, ok.Status);
        Assert.True(copied);
        Assert.Equal(DmaStatus.NotPresent, fault.Status);
        Assert.Equal(Va + 0x20_0000, fault.FaultAddress);
        Assert.NotEqual(0u, status & StatusCopyError);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Reset_MidKernel_DeviceResetNoFenceAndNewContextRuns(SchedulerMode mode)
    {
        using var m = GpuTestMachine.Create(mode);
        ulong oldFence = 1, queuedFence = 1, newFence = 0;
        GpuContextError error = GpuContextError.None, untouched = GpuContextError.BadCommand;
        uint control = 1;
        bool resetDoneWhileHeld = true;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            m.CreateContext(2);
            DeviceArray.Create(m, 1, Va, 8 * 4096, vram: false);
            m.Model.ArmComputeGate(3);
            ulong f1 = m.Launch(1, GpuKernel.Fill, Va, 8 * 1024, 5);
            ulong f2 = m.Launch(1, GpuKernel.Fill, Va, 8, 6);
            m.WaitFor(() => m.Model.ComputeGateHeld, "the kernel to be mid-way");
            m.W32(Control, ControlEnable | ControlReset);
            m.Idle();
            resetDoneWhileHeld = (m.R32(IntStatus) & IntResetDone) != 0;
            m.Model.ReleaseComputeGate();
            m.WaitFor(() => (m.R32(IntStatus) & IntResetDone) != 0, "RESET_DONE");
            m.Idle();
            oldFence = m.ReadFence(f1);
            queuedFence = m.ReadFence(f2);
            error = m.Error(1);
            untouched = m.Error(2);
            control = m.R32(ContextBlock(1) + CtxControl);

            m.CreateContext(5);
            DeviceArray.Create(m, 5, Va, 4096, vram: true);
            ulong f3 = m.Launch(5, GpuKernel.Fill, Va, 1024, 7);
            m.WaitFence(f3, "the new context's fence");
            newFence = m.ReadFence(f3);
        });

        Assert.False(resetDoneWhileHeld);
        Assert.Equal(0UL, oldFence);
        Assert.Equal(0UL, queuedFence);
        Assert.Equal(GpuContextError.DeviceReset, error);
        Assert.Equal(GpuContextError.None, untouched);
        Assert.Equal(0u, control & CtxControlValid);
        Assert.Equal(0xF00DUL, newFence);
    }

    [Fact]
    public void FunctionLevelReset_StalledContext_RegistersAtResetAndDeviceServesAfterReprogram()
    {
        using var m = GpuTestMachine.Create();
        ulong fence = 0, stalledFence = 1;
        uint control = 1, put = 1;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            ulong f0 = m.Launch(1, GpuKernel.Fill, Va, 4, 1);
            m.WaitFor(() => m.State(1) == GpuContextState.Stalled, "the stall");
            m.Dev.FunctionLevelReset();
            control = m.R32(Control);
            put = m.FaultPut;
            stalledFence = m.ReadFence(f0);
            for (int v = 0; v < Vectors; v++)
                m.W32(MsixVectorControl(v), 0);
            m.Program();
            m.CreateContext(1);
            DeviceArray.Create(m, 1, Va, 4096, vram: false);
            ulong f = m.Launch(1, GpuKernel.Fill, Va, 4, 1);
            m.WaitFence(f, "the fence after FLR");
            fence = m.ReadFence(f);
        });

        Assert.Equal(0u, control);
        Assert.Equal(0u, put);
        Assert.Equal(0UL, stalledFence);
        Assert.Equal(0xF00DUL, fence);
    }
}
