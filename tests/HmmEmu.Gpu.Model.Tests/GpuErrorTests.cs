using HmmEmu.Hardware.Rings;
using static HmmEmu.Gpu.GpuRegisters;

namespace HmmEmu.Gpu.Model.Tests;

/// <summary>Bad programming: context errors, a stopped command ring, refused registers, masked interrupts.</summary>
public sealed class GpuErrorTests
{
    private const ulong Va = 0x1000_0000;

    [Theory]
    [InlineData(GpuKernel.Fill, Va + 2, 4UL, 0UL, GpuContextError.BadArgument, Va + 2)]
    [InlineData(GpuKernel.AtomicAdd, Va + 4, 4UL, 0UL, GpuContextError.BadArgument, Va + 4)]
    [InlineData(GpuKernel.Fill, Va, 0UL, 0UL, GpuContextError.BadArgument, Va)]
    [InlineData(GpuKernel.Copy, Va, Va + 8, 16UL, GpuContextError.BadArgument, Va)]
    [InlineData(GpuKernel.Fill, 1UL << 48, 4UL, 0UL, GpuContextError.AddressOutOfRange, 1UL << 48)]
    [InlineData(GpuKernel.PointerChase, Va, 2UL, Va + 0x800, GpuContextError.BadArgument, Va + 3)]
    public void Launch_BadArguments_ContextFailsImmediatelyWithoutFault(GpuKernel kernel, ulong a0, ulong a1, ulong a2,
        GpuContextError expectedError, ulong expectedAddress)
    {
        using var m = GpuTestMachine.Create();
        GpuContextError error = GpuContextError.None;
        ulong address = 0, fence = 0;
        uint faults = 1;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            var a = DeviceArray.Create(m, 1, Va, 4096, vram: false);
            BitConverter.TryWriteBytes(a.Span, Va + 3);          // a misaligned next pointer for PointerChase
            ulong f = m.Launch(1, kernel, a0, a1, a2);
            m.WaitFence(f, "the failed command's fence");
            fence = m.ReadFence(f);
            error = m.Error(1);
            address = m.ErrorAddress(1);
            faults = m.Model.FaultsTaken;
        });

        Assert.Equal(0xF00DUL, fence);
        Assert.Equal(expectedError, error);
        Assert.Equal(expectedAddress, address);
        Assert.Equal(0u, faults);
    }

    [Fact]
    public void Launch_MalformedTable_BadPageTable()
    {
        using var m = GpuTestMachine.Create();
        GpuContextError error = GpuContextError.None;

        m.Run(() =>
        {
            m.Start();
            m.W64(ContextBlock(1) + CtxPtBase, 0x1000 | (1UL << 60) | 1);   // reserved bit set in the root
            m.W32(ContextBlock(1) + CtxControl, CtxControlValid);
            m.WaitFence(m.Launch(1, GpuKernel.Fill, Va, 4, 1), "the fence");
            error = m.Error(1);
        });

        Assert.Equal(GpuContextError.BadPageTable, error);
    }

    [Theory]
    [InlineData(7, 0, 0, 0)]        // unknown opcode
    [InlineData(1, 0, 0, 0)]        // LAUNCH of kernel None
    [InlineData(0, 0, 1, 0)]        // NOP carrying a kernel
    [InlineData(0, 0x80, 0, 0)]     // undefined flag
    [InlineData(0, 0, 0, 1)]        // reserved half-word
    public void Submit_BadCommand_ContextFailsFenceStillWrittenRingRuns(byte opcode, byte flags, ushort kernel, ushort reserved)
    {
        using var m = GpuTestMachine.Create();
        GpuContextError error = GpuContextError.None;
        ulong fence = 0, laterOther = 0;
        RingState ring = RingState.Stopped;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            m.CreateContext(2);
            ulong f = m.NewFence();
            m.WriteEntry(new GpuCommand((GpuOpcode)opcode, (GpuCommandFlags)flags, 1, (GpuKernel)kernel, f, 0xF00D));
            BitConverter.TryWriteBytes(m.LastEntry()[GpuCommand.ReservedOffset..], reserved);
            m.RingCommandDoorbell();
            ulong f2 = m.NewFence();
            m.Submit(GpuCommand.Nop(2, f2, 0xF00D, GpuCommandFlags.None));
            m.WaitFence(f, "the bad command's fence");
            m.WaitFence(f2, "the other context's fence");
            fence = m.ReadFence(f);
            laterOther = m.ReadFence(f2);
            error = m.Error(1);
            ring = (RingState)(m.R64(CmdStatus) & 3);
        });

        Assert.Equal(GpuContextError.BadCommand, error);
        Assert.Equal(0xF00DUL, fence);
        Assert.Equal(0xF00DUL, laterOther);
        Assert.Equal(RingState.Running, ring);
    }

    [Fact]
    public void Submit_ContextOutOfRange_RingStopsWithCommandRingStopped()
    {
        using var m = GpuTestMachine.Create();
        ulong status = 0, info = 0, nopFence = 0;
        uint code = 0, statusBits = 0;
        long errorVectors = 0;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            ulong f0 = m.NewFence();
            m.Submit(GpuCommand.Nop(1, f0, 0xF00D, GpuCommandFlags.None));
            m.WaitFence(f0, "the first nop");
            m.Submit(GpuCommand.Nop(16, m.NewFence(), 1, GpuCommandFlags.None));
            ulong f2 = m.NewFence();
            m.Submit(GpuCommand.Nop(1, f2, 0xF00D, GpuCommandFlags.None));
            m.WaitFor(() => (m.R64(CmdStatus) & 3) == (ulong)RingState.Stopped, "the ring stop");
            m.Idle();
            status = m.R64(CmdStatus);
            code = m.R32(ErrorCode);
            info = m.R64(ErrorInfo);
            statusBits = m.R32(Status);
            nopFence = m.ReadFence(f2);
            m.Bus.SynchronizeInterrupts();
            errorVectors = m.VectorCount(VectorError);
        });

        Assert.Equal((ulong)RingError.MalformedEntry, (status >> 8) & 0xFF);
        Assert.Equal(1UL, status >> 32);
        Assert.Equal((uint)GpuDeviceError.CommandRingStopped, code);
        Assert.Equal(1UL, info);
        Assert.NotEqual(0u, statusBits & StatusCommandError);
        Assert.Equal(0UL, nopFence);
        Assert.True(errorVectors >= 1);
    }

    [Fact]
    public void Valid_ClearedAndSetBeforeTheWorkerRuns_OnlyOlderWorkFails()
    {
        using var m = GpuTestMachine.Create();
        ulong oldFence = 0, newFence = 0;
        GpuContextError error = GpuContextError.BadCommand;
        uint value = 0;

        m.Run(() =>
        {
            m.Start();
            var buf = m.Alloc(4096);
            m.CreateContext(3);
            m.MapRange(3, Va, Hardware.Memory.Aperture.System, buf.BusAddress, 4096, Hardware.Mmu.PtePermissions.ReadWrite);
            // Queued while valid, then VALID cleared and set again, then new work: back to back, with no yield in
            // between, so the worker sees the clear only after the set.
            ulong f1 = m.Launch(3, GpuKernel.Fill, Va, 1024, 1);
            m.W32(ContextBlock(3) + CtxControl, 0);
            m.CreateContext(3);
            ulong f2 = m.Launch(3, GpuKernel.Fill, Va, 1024, 2);
            m.WaitFence(f2, "the new epoch's fill");
            oldFence = m.ReadFence(f1);
            newFence = m.ReadFence(f2);
            error = m.Error(3);
            value = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buf.Span);
        });

        Assert.NotEqual(0UL, oldFence);                  // the older command finished (failed or done), fence written
        Assert.NotEqual(0UL, newFence);
        Assert.Equal(GpuContextError.None, error);       // the new epoch is not in error
        Assert.Equal(2u, value);                         // and its work ran
    }

    [Fact]
    public void Launch_InvalidContext_ContextInvalid()
    {
        using var m = GpuTestMachine.Create();
        GpuContextError error = GpuContextError.None;
        ulong fence = 0;

        m.Run(() =>
        {
            m.Start();
            ulong f = m.Launch(9, GpuKernel.Fill, Va, 4, 1);
            m.WaitFence(f, "the fence");
            fence = m.ReadFence(f);
            error = m.Error(9);
        });

        Assert.Equal(0xF00DUL, fence);
        Assert.Equal(GpuContextError.ContextInvalid, error);
    }

    [Fact]
    public void RingConfig_WriteWhileEnabled_RefusedWithBadRegister()
    {
        using var m = GpuTestMachine.Create();
        ulong before = 0, after = 0, info = 0;
        uint status = 0, code = 0;

        m.Run(() =>
        {
            m.Start();
            before = m.R64(CmdBase);
            m.W64(CmdBase, 0x1234_0000);
            after = m.R64(CmdBase);
            status = m.R32(Status);
            code = m.R32(ErrorCode);
            info = m.R64(ErrorInfo);
            m.W32(Status, StatusBadRegister);
            Assert.Equal(0u, m.R32(Status) & StatusBadRegister);
        });

        Assert.Equal(before, after);
        Assert.NotEqual(0u, status & StatusBadRegister);
        Assert.Equal((uint)GpuDeviceError.BadRegister, code);
        Assert.Equal(CmdBase, info);
    }

    [Fact]
    public void IntMask_MaskedCauseLatchedWithoutVector_UnmaskSendsIt()
    {
        using var m = GpuTestMachine.Create();
        long whileMasked = -1, afterUnmask = -1;
        uint latched = 0;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            m.W32(IntMask, IntFence);
            m.Bus.SynchronizeInterrupts();
            long before = m.VectorCount(VectorEvents);
            ulong f = m.NewFence();
            m.Submit(GpuCommand.Nop(1, f, 1, GpuCommandFlags.Interrupt));
            m.WaitFence(f, "the fence");
            m.Bus.SynchronizeInterrupts();
            whileMasked = m.VectorCount(VectorEvents) - before;
            latched = m.R32(IntStatus) & IntFence;
            m.W32(IntMask, 0);
            m.Bus.SynchronizeInterrupts();
            afterUnmask = m.VectorCount(VectorEvents) - before;
        });

        Assert.Equal(0, whileMasked);
        Assert.Equal(IntFence, latched);
        Assert.Equal(1, afterUnmask);
    }

    [Fact]
    public void Probe_IdentityRegisters_ReadAsSpecified()
    {
        using var m = GpuTestMachine.Create();
        uint id = 0, caps = 0, bad = 0;
        ulong vram = 0;
        long busErrors = 0;

        m.Run(() =>
        {
            m.Start();
            id = m.R32(Id);
            caps = m.R32(Caps);
            vram = m.R64(VramSize);
            bad = m.R32(0x3FFC);
            busErrors = m.R32(BusErrors);
        });

        Assert.Equal(IdValue, id);
        Assert.Equal(16u, caps & 0xFF);
        Assert.Equal(1u, (caps >> 8) & 0xF);
        Assert.Equal(32u, (caps >> 16) & 0xFF);
        Assert.Equal(8UL << 20, vram);
        Assert.Equal(~0u, bad);
        Assert.Equal(1, busErrors);
    }
}
