using HmmEmu.Hardware.Registers;
using HmmEmu.Kernel;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Registers;

/// <summary>Driver-side semantics of each register mode, access size and alignment rules, and device-side setters.</summary>
public sealed class RegisterFileTests
{
    private static RegisterFile NewFile(Trace? trace = null) => new("test.bar0", 0x100, trace);

    [Fact]
    public void Read_AfterDefine_ReturnsResetValue()
    {
        var f = NewFile();
        f.Define32(0x00, "ID", "Identity.", reset: 0x010000ed);

        Assert.Equal(0x010000edUL, f.Read(0x00, 4));
    }

    [Fact]
    public void Write_ReadWriteBits_StoresOnlyThoseBits()
    {
        var f = NewFile();
        f.Define32(0x04, "CTRL", "Control.", reset: 0xa000_0000, readWrite: 0x0000_00ff);

        f.Write(0x04, 4, 0x5555_5555);

        Assert.Equal(0xa000_0055UL, f.Read(0x04, 4));
    }

    [Fact]
    public void Write_ReadOnlyRegister_LeavesValueUnchanged()
    {
        var f = NewFile();
        f.Define32(0x00, "ID", "Identity.", reset: 0x1234);

        f.Write(0x00, 4, 0xffff_ffff);

        Assert.Equal(0x1234UL, f.Read(0x00, 4));
        Assert.Equal(0, f.BusErrors);
    }

    [Fact]
    public void Write_OnesToW1cBits_ClearsOnlyTheBitsWrittenAsOne()
    {
        var f = NewFile();
        var status = f.Define32(0x08, "STATUS", "Status.", writeOneToClear: 0x0f);
        status.SetBits(0x0b);

        f.Write(0x08, 4, 0x02);

        Assert.Equal(0x09UL, f.Read(0x08, 4));
    }

    [Fact]
    public void Write_ZeroToW1cBits_LeavesThemSet()
    {
        var f = NewFile();
        var status = f.Define32(0x08, "STATUS", "Status.", writeOneToClear: 0x0f);
        status.SetBits(0x0f);

        f.Write(0x08, 4, 0);

        Assert.Equal(0x0fUL, f.Read(0x08, 4));
    }

    [Fact]
    public void Write_OnesToW1cBitsThatAreClear_DoesNotSetThem()
    {
        var f = NewFile();
        f.Define32(0x08, "STATUS", "Status.", writeOneToClear: 0x0f);

        f.Write(0x08, 4, 0x0f);

        Assert.Equal(0UL, f.Read(0x08, 4));
    }

    [Fact]
    public void Read_WriteOnlyBits_ReturnZeroWhileDeviceSeesWrittenValue()
    {
        var f = NewFile();
        var key = f.Define32(0x0c, "KEY", "Key.", readWrite: 0xff00, writeOnly: 0x00ff);

        f.Write(0x0c, 4, 0xabcd);

        Assert.Equal(0xab00UL, f.Read(0x0c, 4));
        Assert.Equal(0xabcdUL, key.Value);
    }

    [Fact]
    public void Write_Doorbell_InvokesHandlerWithWrittenAndStoredValue()
    {
        var f = NewFile();
        ulong written = 0, stored = 0;
        int calls = 0;
        f.Define32(0x10, "TAIL", "Ring tail doorbell.", readWrite: 0xffff, onWrite: (w, v) => { written = w; stored = v; calls++; });

        f.Write(0x10, 4, 0x1234_0007);

        Assert.Equal(1, calls);
        Assert.Equal(0x1234_0007UL, written);
        Assert.Equal(0x0007UL, stored);
    }

    [Fact]
    public void Write_DoorbellHighHalfOf64BitRegister_PassesValueShiftedIntoPlace()
    {
        var f = NewFile();
        ulong written = 0;
        f.Define64(0x18, "BASE", "Ring base.", readWrite: ~0UL, onWrite: (w, _) => written = w);

        f.Write(0x1c, 4, 0x8);

        Assert.Equal(0x8UL << 32, written);
    }

    [Fact]
    public void Read_LowAndHighHalvesOf64BitRegister_ReturnEachHalf()
    {
        var f = NewFile();
        f.Define64(0x18, "BASE", "Ring base.", reset: 0x1122_3344_5566_7788);

        Assert.Equal(0x5566_7788UL, f.Read(0x18, 4));
        Assert.Equal(0x1122_3344UL, f.Read(0x1c, 4));
    }

    [Fact]
    public void Write_HighHalfOf64BitRegister_KeepsLowHalf()
    {
        var f = NewFile();
        f.Define64(0x18, "BASE", "Ring base.", reset: 0x1122_3344_5566_7788, readWrite: ~0UL);

        f.Write(0x1c, 4, 0xaabb_ccdd);

        Assert.Equal(0xaabb_ccdd_5566_7788UL, f.Read(0x18, 8));
    }

    [Fact]
    public void Write_64BitAccess_StoresWholeRegister()
    {
        var f = NewFile();
        f.Define64(0x18, "BASE", "Ring base.", readWrite: ~0UL);

        f.Write(0x18, 8, 0x0123_4567_89ab_cdef);

        Assert.Equal(0x0123_4567_89ab_cdefUL, f.Read(0x18, 8));
    }

    [Fact]
    public void Read_UnknownOffset_ReturnsAllOnesAndCountsBusError()
    {
        var f = NewFile();
        f.Define32(0x00, "ID", "Identity.");

        Assert.Equal(0xffff_ffffUL, f.Read(0x40, 4));
        Assert.Equal(1, f.BusErrors);
    }

    [Fact]
    public void Read_OffsetBeyondFile_ReturnsAllOnes64()
    {
        var f = NewFile();

        Assert.Equal(ulong.MaxValue, f.Read(0x1_0000_0000, 8));
        Assert.Equal(1, f.BusErrors);
    }

    [Fact]
    public void Read_UnalignedOffset_ReturnsAllOnesAndCountsBusError()
    {
        var f = NewFile();
        f.Define32(0x00, "ID", "Identity.", reset: 7);

        Assert.Equal(0xffff_ffffUL, f.Read(0x02, 4));
        Assert.Equal(1, f.BusErrors);
    }

    [Fact]
    public void Read_64BitAccessTo32BitRegister_ReturnsAllOnes()
    {
        var f = NewFile();
        f.Define32(0x00, "A", "A.", reset: 1);
        f.Define32(0x04, "B", "B.", reset: 2);

        Assert.Equal(ulong.MaxValue, f.Read(0x00, 8));
        Assert.Equal(1, f.BusErrors);
    }

    [Theory]
    [InlineData(1, 0xffUL)]
    [InlineData(2, 0xffffUL)]
    [InlineData(3, 0xff_ffffUL)]
    [InlineData(0, ulong.MaxValue)]
    [InlineData(16, ulong.MaxValue)]
    public void Read_BadAccessSize_ReturnsAllOnesOfThatSize(int size, ulong expected)
    {
        var f = NewFile();
        f.Define32(0x00, "ID", "Identity.", reset: 0);

        Assert.Equal(expected, f.Read(0x00, size));
        Assert.Equal(1, f.BusErrors);
    }

    [Fact]
    public void Write_UnknownOffset_IsDroppedAndCountsBusError()
    {
        var f = NewFile();
        var ctrl = f.Define32(0x04, "CTRL", "Control.", readWrite: ~0u);

        f.Write(0x44, 4, 0xdead);

        Assert.Equal(0UL, ctrl.Value);
        Assert.Equal(1, f.BusErrors);
    }

    [Fact]
    public void BusErrorHandler_BadReadAndBadWrite_CalledOnceEachAfterCounting()
    {
        var seen = new List<long>();
        RegisterFile? f = null;
        f = new RegisterFile("test.bar0", 0x100, onBusError: () => seen.Add(f!.BusErrors));
        f.Define32(0x04, "CTRL", "Control.", readWrite: ~0u);

        f.Read(0x44, 4);
        f.Write(0x04, 2, 0xbeef);

        Assert.Equal([1L, 2L], seen);
    }

    [Fact]
    public void BusErrorHandler_GoodAccesses_NotCalled()
    {
        int calls = 0;
        var f = new RegisterFile("test.bar0", 0x100, onBusError: () => calls++);
        f.Define64(0x08, "BASE", "Base.", readWrite: ~0UL);

        f.Write(0x08, 8, 1);
        f.Write(0x0C, 4, 2);
        f.Read(0x08, 8);

        Assert.Equal(0, calls);
    }

    [Fact]
    public void Write_TwoByteAccessToRegister_IsDropped()
    {
        var f = NewFile();
        var ctrl = f.Define32(0x04, "CTRL", "Control.", readWrite: ~0u);

        f.Write(0x04, 2, 0xbeef);

        Assert.Equal(0UL, ctrl.Value);
        Assert.Equal(1, f.BusErrors);
    }

    [Fact]
    public void Write_64BitAccessAtHighHalfOf64BitRegister_IsDropped()
    {
        var f = NewFile();
        var baseReg = f.Define64(0x18, "BASE", "Ring base.", readWrite: ~0UL);

        f.Write(0x1c, 8, 0x1234);

        Assert.Equal(0UL, baseReg.Value);
        Assert.Equal(1, f.BusErrors);
    }

    [Fact]
    public void Write_BadAccessToDoorbell_DoesNotRingIt()
    {
        var f = NewFile();
        int calls = 0;
        f.Define32(0x10, "DB", "Doorbell.", writeOnly: ~0u, onWrite: (_, _) => calls++);

        f.Write(0x12, 4, 1);

        Assert.Equal(0, calls);
    }

    [Fact]
    public void BusError_WithTrace_RecordsAnEventWithOffsetSizeAndDirection()
    {
        using var kernel = new HostKernel(KernelOptions.For(1) with { RamBytes = 1UL << 20, RetainTrace = true });
        var f = NewFile(kernel.Trace);

        f.Write(0x30, 2, 0);

        var ev = Assert.Single(kernel.Trace.Snapshot(), e => e.Type.Category == "mmio");
        Assert.Equal("bus_error", ev.Type.Name);
        Assert.Equal((0x30UL, 2UL, 1UL), (ev.A, ev.B, ev.C));
    }

    [Fact]
    public void SetBits_OnReadOnlyRegister_BypassesDriverMasks()
    {
        var f = NewFile();
        var status = f.Define32(0x08, "STATUS", "Status.");

        status.SetBits(0x80);

        Assert.Equal(0x80UL, f.Read(0x08, 4));
    }

    [Fact]
    public void Set_ValueWiderThan32BitRegister_IsTruncated()
    {
        var f = NewFile();
        var r = f.Define32(0x08, "STATUS", "Status.");

        r.Set(0x1_0000_0002);

        Assert.Equal(2UL, r.Value);
    }

    [Fact]
    public void Read_RegisterWithReadHook_ReturnsComputedValue()
    {
        var f = NewFile();
        ulong counter = 41;
        f.Define32(0x20, "COUNTER", "Free-running counter.", onRead: _ => ++counter);

        Assert.Equal(42UL, f.Read(0x20, 4));
    }

    [Fact]
    public void Reset_AfterWrites_RestoresResetValuesAndRunsHooks()
    {
        var f = NewFile();
        var ctrl = f.Define32(0x04, "CTRL", "Control.", reset: 0x10, readWrite: ~0u);
        var status = f.Define32(0x08, "STATUS", "Status.", writeOneToClear: ~0u);
        int hookCalls = 0;
        f.AddResetHook(() => hookCalls++);
        f.Write(0x04, 4, 0x99);
        status.SetBits(3);

        f.Reset();

        Assert.Equal(0x10UL, ctrl.Value);
        Assert.Equal(0UL, status.Value);
        Assert.Equal(1, hookCalls);
    }

    [Fact]
    public void Define_OverlappingRegister_Throws()
    {
        var f = NewFile();
        f.Define64(0x18, "BASE", "Ring base.");

        var ex = Assert.Throws<ArgumentException>(() => f.Define32(0x1c, "OOPS", "Overlaps BASE."));

        Assert.Contains("overlaps BASE", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Define_MisalignedOffset_Throws()
    {
        var f = NewFile();

        Assert.Throws<ArgumentException>(() => f.Define64(0x04, "BASE", "Misaligned."));
    }

    [Fact]
    public void Define_BeyondFileSize_Throws()
    {
        var f = NewFile();

        Assert.Throws<ArgumentException>(() => f.Define32(0x100, "LATE", "Past the end."));
    }

    [Fact]
    public void Define_BitInTwoModes_Throws()
    {
        var f = NewFile();

        var ex = Assert.Throws<ArgumentException>(() => f.Define32(0x00, "BAD", "Conflicting masks.", readWrite: 0x3, writeOneToClear: 0x2));

        Assert.Contains("two modes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Define_DuplicateName_Throws()
    {
        var f = NewFile();
        f.Define32(0x00, "CTRL", "Control.");

        Assert.Throws<ArgumentException>(() => f.Define32(0x04, "CTRL", "Again."));
    }

    [Fact]
    public void Define_Fields_DeriveMasksFromFieldModes()
    {
        var f = NewFile();
        var r = f.Define(new RegisterDefinition
        {
            Offset = 0x00,
            Name = "CTRL",
            Fields =
            [
                new RegisterField("ENABLE", 0, 1, FieldMode.ReadWrite),
                new RegisterField("ERR", 1, 1, FieldMode.WriteOneToClear),
                new RegisterField("KICK", 2, 1, FieldMode.WriteOnly),
                new RegisterField("VERSION", 16, 16, FieldMode.ReadOnly),
            ],
        });

        Assert.Equal((0x1UL, 0x2UL, 0x4UL), (r.ReadWriteMask, r.WriteOneToClearMask, r.WriteOnlyMask));
        Assert.Equal(0xffff_fff8UL, r.ReadOnlyMask);
    }

    [Fact]
    public void Write_DeviceSetsW1cWhileDriverClearsOthers_NoUpdateIsLost()
    {
        var f = NewFile();
        var status = f.Define64(0x08, "STATUS", "Status.", writeOneToClear: ~0UL);
        const ulong DeviceBits = 0x5555_5555;
        const ulong DriverBits = 0xaaaa_aaaa_0000_0000;
        int lost = 0, deviceDone = 0;
        using var start = new Barrier(2);

        // The device raises and withdraws its own bits while the driver acknowledges other bits with W1C writes.
        // A driver write that is not atomic on the register would overwrite a device bit set in between.
        var device = new Thread(() =>
        {
            start.SignalAndWait();
            for (int round = 0; round < 20_000; round++)
            {
                status.SetBits(DeviceBits);
                Thread.SpinWait(20); // give a driver write time to land while the bits are set
                if ((status.Value & DeviceBits) != DeviceBits)
                    lost++;
                status.ClearBits(DeviceBits);
            }
            Volatile.Write(ref deviceDone, 1);
        });
        var driver = new Thread(() =>
        {
            start.SignalAndWait();
            while (Volatile.Read(ref deviceDone) == 0)
            {
                status.SetBits(DriverBits);
                f.Write(0x08, 8, DriverBits);
            }
        });
        device.Start();
        driver.Start();
        device.Join();
        driver.Join();

        Assert.Equal(0, lost);
        Assert.Equal(0UL, status.Value & DriverBits);
    }
}
