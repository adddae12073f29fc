using System.Runtime.InteropServices;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Simulation;
using static HmmEmu.Gpu.GpuRegisters;

namespace HmmEmu.Gpu.Model.Tests;

/// <summary>The replayable fault unit: records, stall, replay, cancel, permission faults, overflow, resumable kernels.</summary>
public sealed class GpuFaultTests
{
    private const ulong Va = 0x7F00_0000_0000;
    private const ulong Page = GpuTestMachine.Page;

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Fill_UnmappedPage_RecordsFaultStallsThenReplayAfterMapCompletes(SchedulerMode mode)
    {
        using var m = GpuTestMachine.Create(mode);
        GpuFaultRecord record = default;
        GpuContextState stalledState = GpuContextState.Idle;
        ulong fenceBeforeReplay = 1, fenceAfter = 0;
        bool filled = false;
        long faultVectors = 0;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(2);
            var a = DeviceArray.Create(m, 2, Va, 3 * 4096, vram: false, map: false);
            m.Map(2, Va, Aperture.System, a.Address, PtePermissions.ReadWrite);
            ulong fence = m.Launch(2, GpuKernel.Fill, Va, 3 * 1024, 0x55);
            m.WaitFor(() => m.FaultPut == 1, "the fault record");
            m.WaitFor(() => m.State(2) == GpuContextState.Stalled, "the stall");
            stalledState = m.State(2);
            record = m.FaultRecord(0);
            m.Idle();
            fenceBeforeReplay = m.ReadFence(fence);
            m.MapRange(2, Va + Page, Aperture.System, a.Address + Page, 2 * Page, PtePermissions.ReadWrite);
            m.DrainFaults();
            m.W32(FaultReplay, 1);
            m.WaitFence(fence, "the fence after replay");
            fenceAfter = m.ReadFence(fence);
            filled = MemoryMarshal.Cast<byte, uint>(a.Span).IndexOfAnyExcept(0x55u) < 0;
            m.Bus.SynchronizeInterrupts();
            faultVectors = m.VectorCount(VectorFault);
        });

        Assert.Equal(GpuContextState.Stalled, stalledState);
        Assert.Equal(Va + Page, record.Address);
        Assert.Equal((ushort)2, record.Context);
        Assert.Equal(GpuFaultAccess.Write, record.Access);
        Assert.Equal(GpuEngineId.Compute, record.Engine);
        Assert.Equal(GpuFaultReason.NotPresent, record.Reason);
        Assert.Equal(1u, record.Sequence);
        Assert.True(record.Timestamp > 0);
        Assert.Equal(0UL, fenceBeforeReplay);
        Assert.Equal(0xF00DUL, fenceAfter);
        Assert.True(filled);
        Assert.True(faultVectors >= 1);
    }

    [Fact]
    public void FaultAndReplayScenario_SameSeed_SameTraceHash()
    {
        Assert.Equal(RunScenario(7), RunScenario(7));

        static ulong RunScenario(ulong seed)
        {
            using var m = GpuTestMachine.Create(SchedulerMode.Deterministic, seed);
            m.Run(() =>
            {
                m.Start();
                m.CreateContext(1);
                m.CreateContext(2);
                var a = DeviceArray.Create(m, 1, Va, 2 * 4096, vram: false, map: false);
                DeviceArray.Create(m, 2, Va, 2 * 4096, vram: true);
                ulong f1 = m.Launch(1, GpuKernel.Fill, Va, 2 * 1024, 1);
                ulong f2 = m.Launch(2, GpuKernel.AtomicAdd, Va, 1024, 1);
                m.WaitFor(() => m.State(1) == GpuContextState.Stalled, "the stall");
                m.MapRange(1, Va, Aperture.System, a.Address, 2 * Page, PtePermissions.ReadWrite);
                m.DrainFaults();
                m.W32(FaultReplay, 1);
                m.WaitFence(f1, "fence 1");
                m.WaitFence(f2, "fence 2");
            });
            return m.Kernel.Trace.Hash;
        }
    }

    [Fact]
    public void AtomicAdd_FaultMidway_ResumesWithoutApplyingAnyElementTwice()
    {
        using var m = GpuTestMachine.Create();
        bool exact = false;
        uint faults = 0;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            var a = DeviceArray.Create(m, 1, Va, 4 * 4096, vram: true, map: false);
            m.MapRange(1, Va, Aperture.Vram, a.Address, 2 * Page, PtePermissions.ReadWriteAtomic);
            ulong fence = m.Launch(1, GpuKernel.AtomicAdd, Va, 4 * 512, 5);
            m.WaitFor(() => m.State(1) == GpuContextState.Stalled, "the stall");
            // A replay without mapping faults again at the same address.
            m.DrainFaults();
            m.W32(FaultReplay, 1);
            m.WaitFor(() => m.FaultPut == 2, "the second fault");
            m.MapRange(1, Va + (2 * Page), Aperture.Vram, a.Address + (2 * Page), 2 * Page, PtePermissions.ReadWriteAtomic);
            m.DrainFaults();
            m.W32(FaultReplay, 1);
            m.WaitFence(fence, "the fence");
            exact = MemoryMarshal.Cast<byte, ulong>(a.Span).IndexOfAnyExcept(5UL) < 0;
            faults = m.Model.FaultsTaken;
            Assert.Equal(Va + (2 * Page), m.FaultRecord(1).Address);
        });

        Assert.True(exact);
        Assert.Equal(2u, faults);
    }

    [Fact]
    public void ReduceSum_DestinationFaults_PartialSumKeptAcrossReplay()
    {
        using var m = GpuTestMachine.Create();
        ulong sum = 0, expected = 0;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            var src = DeviceArray.Create(m, 1, Va, 3 * 4096, vram: false, permissions: PtePermissions.Read);
            var dst = DeviceArray.Create(m, 1, Va + 0x10_0000, 4096, vram: false, map: false);
            GpuKernelTests.Pattern(src.Span, 4);
            foreach (uint v in MemoryMarshal.Cast<byte, uint>(src.Span))
                expected += v;
            ulong fence = m.Launch(1, GpuKernel.ReduceSum, Va + 0x10_0000, Va, 3 * 1024);
            m.WaitFor(() => m.State(1) == GpuContextState.Stalled, "the stall on dst");
            Assert.Equal(GpuFaultAccess.Write, m.FaultRecord(0).Access);
            // Change the source behind the device's back: a restarted kernel would see it, a resumed one does not.
            src.Span.Clear();
            m.Map(1, Va + 0x10_0000, Aperture.System, dst.Address, PtePermissions.ReadWrite);
            m.DrainFaults();
            m.W32(FaultReplay, 1);
            m.WaitFence(fence, "the fence");
            sum = BitConverter.ToUInt64(dst.Span[..8]);
        });

        Assert.Equal(expected, sum);
    }

    [Fact]
    public void Cancel_StalledContext_ErrorFenceWrittenLaterCommandsFailOthersComplete()
    {
        using var m = GpuTestMachine.Create();
        ulong f1 = 0, f2 = 0, fOther = 0, completed = 0, errorAddress = 0;
        GpuContextState state = GpuContextState.Idle, stateOther = GpuContextState.Error;
        GpuContextError error = GpuContextError.None;
        bool otherDoneWhileStalled = false, laterUntouched = false;
        long errorEvents = 0;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(4);
            m.CreateContext(5);
            var later = DeviceArray.Create(m, 4, Va + 0x100_0000, 4096, vram: false);
            var other = DeviceArray.Create(m, 5, Va, 2 * 4096, vram: false);
            ulong fence1 = m.Launch(4, GpuKernel.Fill, Va, 16, 1);                      // unmapped: stalls
            ulong fence2 = m.Launch(4, GpuKernel.Fill, Va + 0x100_0000, 16, 2);         // queued behind it
            ulong fenceOther = m.Launch(5, GpuKernel.Fill, Va, 2 * 1024, 3);
            m.WaitFor(() => m.State(4) == GpuContextState.Stalled, "the stall");
            m.WaitFence(fenceOther, "the other context's fence");
            otherDoneWhileStalled = m.State(4) == GpuContextState.Stalled;
            m.W32(FaultCancel, 4);
            m.WaitFence(fence2, "the queued command's fence");
            f1 = m.ReadFence(fence1);
            f2 = m.ReadFence(fence2);
            fOther = m.ReadFence(fenceOther);
            state = m.State(4);
            error = m.Error(4);
            errorAddress = m.ErrorAddress(4);
            completed = m.Completed(4);
            stateOther = m.State(5);
            laterUntouched = later.Span.IndexOfAnyExcept((byte)0) < 0;
            m.Bus.SynchronizeInterrupts();
            errorEvents = m.VectorCount(VectorEvents);
            Assert.NotEqual(0u, m.R32(IntStatus) & IntContextError);
        });

        Assert.True(otherDoneWhileStalled);
        Assert.Equal(0xF00DUL, f1);
        Assert.Equal(0xF00DUL, f2);
        Assert.Equal(0xF00DUL, fOther);
        Assert.Equal(GpuContextState.Error, state);
        Assert.Equal(GpuContextError.FaultCancelled, error);
        Assert.Equal(Va, errorAddress);
        Assert.Equal(2UL, completed);
        Assert.Equal(GpuContextState.Idle, stateOther);
        Assert.True(laterUntouched);
        Assert.True(errorEvents >= 1);
    }

    [Fact]
    public void Cancel_ThenValidAgain_ContextRunsNewWork()
    {
        using var m = GpuTestMachine.Create();
        ulong fence = 0;
        GpuContextError errorAfterValid = GpuContextError.FaultCancelled;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(4);
            m.Launch(4, GpuKernel.Fill, Va, 16, 1);
            m.WaitFor(() => m.State(4) == GpuContextState.Stalled, "the stall");
            m.W32(FaultCancel, 4);
            m.WaitFor(() => m.State(4) == GpuContextState.Error, "the error");
            m.W32(ContextBlock(4) + CtxControl, 0);
            m.W32(ContextBlock(4) + CtxControl, CtxControlValid);
            errorAfterValid = m.Error(4);
            DeviceArray.Create(m, 4, Va, 4096, vram: false);
            ulong f = m.Launch(4, GpuKernel.Fill, Va, 16, 1);
            m.WaitFence(f, "the new fence");
            fence = m.ReadFence(f);
        });

        Assert.Equal(GpuContextError.None, errorAfterValid);
        Assert.Equal(0xF00DUL, fence);
    }

    [Theory]
    [InlineData(GpuKernel.Fill, PtePermissions.Read, GpuFaultAccess.Write)]
    [InlineData(GpuKernel.AtomicAdd, PtePermissions.ReadWrite, GpuFaultAccess.Atomic)]
    [InlineData(GpuKernel.ReduceSum, PtePermissions.Write, GpuFaultAccess.Read)]
    public void Launch_MissingRight_PermissionFaultRecorded(GpuKernel kernel, PtePermissions permissions, GpuFaultAccess access)
    {
        using var m = GpuTestMachine.Create();
        GpuFaultRecord record = default;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            DeviceArray.Create(m, 1, Va, 4096, vram: false, permissions: permissions);
            DeviceArray.Create(m, 1, Va + 0x10_0000, 4096, vram: false);
            if (kernel == GpuKernel.ReduceSum)
                m.Launch(1, kernel, Va + 0x10_0000, Va, 8);
            else
                m.Launch(1, kernel, Va, 8, 1);
            m.WaitFor(() => m.FaultPut == 1, "the fault record");
            record = m.FaultRecord(0);
        });

        Assert.Equal(GpuFaultReason.Permission, record.Reason);
        Assert.Equal(access, record.Access);
        Assert.Equal(Va, record.Address);
    }

    [Fact]
    public void FaultBuffer_Full_OverflowCountedContextStillStallsAndRefaultsOnReplay()
    {
        using var m = GpuTestMachine.Create(faultEntries: 2);
        uint overflows = 0, putAfterReplay = 0;
        var stalled = new GpuContextState[3];

        m.Run(() =>
        {
            m.Start();
            for (int c = 1; c <= 3; c++)
            {
                m.CreateContext(c);
                m.Launch(c, GpuKernel.Fill, Va, 4, 1);
            }
            m.WaitFor(() => m.R32(FaultOverflows) == 1, "the overflow");
            m.Idle();
            overflows = m.R32(FaultOverflows);
            for (int c = 1; c <= 3; c++)
                stalled[c - 1] = m.State(c);
            m.DrainFaults();
            m.W32(FaultReplay, 1);
            // Two of the three fit again; the third overflows again.
            m.WaitFor(() => m.R32(FaultOverflows) == 2, "the second overflow");
            putAfterReplay = m.FaultPut;
        });

        Assert.Equal(1u, overflows);
        Assert.All(stalled, s => Assert.Equal(GpuContextState.Stalled, s));
        Assert.Equal(0u, putAfterReplay);      // 4 records written into a 2-entry buffer: index 4 mod 4 (wrap bit)
    }

    [Fact]
    public void UnansweredStalls_StalledContext_ListedUntilReplayOrCancelIsWritten()
    {
        using var m = GpuTestMachine.Create(SchedulerMode.Deterministic);
        IReadOnlyList<int> whileStalled = [], afterReplay = [1], afterSecondFault = [], afterCancel = [1];

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(3);
            ulong fence = m.Launch(3, GpuKernel.Fill, Va, 16, 1);      // unmapped: stalls
            m.WaitFor(() => m.State(3) == GpuContextState.Stalled, "the stall");
            whileStalled = m.Model.UnansweredStalls();
            m.DrainFaults();
            m.W32(FaultReplay, 1);
            afterReplay = m.Model.UnansweredStalls();                  // answered, even before the engine retries
            m.WaitFor(() => m.FaultPut == 2, "the fault again after the replay");
            afterSecondFault = m.Model.UnansweredStalls();
            m.DrainFaults();
            m.W32(FaultCancel, 3);
            afterCancel = m.Model.UnansweredStalls();
            m.WaitFence(fence, "the cancelled command's fence");
        });

        Assert.Equal([3], whileStalled);
        Assert.Empty(afterReplay);
        Assert.Equal([3], afterSecondFault);
        Assert.Empty(afterCancel);
    }
}
