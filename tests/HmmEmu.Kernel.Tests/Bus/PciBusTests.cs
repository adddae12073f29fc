using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Memory;

namespace HmmEmu.Kernel.Tests.Bus;

/// <summary>Enumeration, driver binding (probe/remove), BAR forwarding and function-level reset.</summary>
public sealed class PciBusTests
{
    private static readonly PciDeviceId s_idA = new(0x1af4, 0x1000);
    private static readonly PciDeviceId s_idB = new(0x1af4, 0x2000);

    [Fact]
    public void Enumerate_PluggedOutOfSlotOrder_ListsFunctionsInSlotOrder()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        int[] slots = [];

        m.Run(() =>
        {
            bus.Plug(7, new FakePciDevice(0x1af4, 0x1000));
            bus.Plug(2, new FakePciDevice(0x1af4, 0x2000));
            bus.Plug(4, new FakePciDevice(0x1af4, 0x3000));
            slots = [.. bus.Enumerate().Select(f => f.Slot)];
        });

        Assert.Equal([2, 4, 7], slots);
    }

    [Fact]
    public void Enumerate_PluggedFunction_ReportsItsIdsAndClass()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        PciFunctionInfo info = default;

        m.Run(() =>
        {
            bus.Plug(3, new FakePciDevice(0x1af4, 0x1000, classCode: 0x030000));
            info = bus.Enumerate().Single();
        });

        Assert.Equal(new PciFunctionInfo(3, 0x1af4, 0x1000, 0x030000, null), info);
    }

    [Fact]
    public void Plug_OccupiedSlot_Throws()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);

        var ex = Assert.Throws<InvalidOperationException>(() => m.Run(() =>
        {
            bus.Plug(1, new FakePciDevice(0x1af4, 0x1000));
            bus.Plug(1, new FakePciDevice(0x1af4, 0x2000));
        }));

        Assert.Contains("Slot 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RegisterDriver_MatchingFunction_ProbesAndBindsIt()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new FakePciDriver("fake", s_idA);
        int bound = 0;
        string? boundName = null;

        m.Run(() =>
        {
            bus.Plug(0, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bound = bus.RegisterDriver(driver);
            boundName = bus.Enumerate().Single().Driver;
        });

        Assert.Equal(1, bound);
        Assert.Equal("fake", boundName);
    }

    [Fact]
    public void RegisterDriver_NonMatchingId_DoesNotProbe()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new FakePciDriver("fake", s_idB);

        m.Run(() =>
        {
            bus.Plug(0, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bus.RegisterDriver(driver);
        });

        Assert.Empty(driver.ProbedSlots);
    }

    [Fact]
    public void RegisterDriver_SeveralMatchingFunctions_ProbesInSlotOrder()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new FakePciDriver("fake", s_idA);

        m.Run(() =>
        {
            bus.Plug(9, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bus.Plug(1, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bus.Plug(5, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bus.RegisterDriver(driver);
        });

        Assert.Equal([1, 5, 9], driver.ProbedSlots);
    }

    [Fact]
    public void Plug_AfterMatchingDriverRegistered_ProbesNewFunction()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new FakePciDriver("fake", s_idA);

        m.Run(() =>
        {
            bus.RegisterDriver(driver);
            bus.Plug(6, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
        });

        Assert.Equal([6], driver.ProbedSlots);
    }

    [Fact]
    public void Probe_ReturnsError_LeavesFunctionUnbound()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new FakePciDriver("fake", s_idA) { OnProbe = _ => Errno.ENODEV };
        string? boundName = "unset";
        int bound = -1;

        m.Run(() =>
        {
            bus.Plug(0, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bound = bus.RegisterDriver(driver);
            boundName = bus.Enumerate().Single().Driver;
        });

        Assert.Equal(0, bound);
        Assert.Null(boundName);
    }

    [Fact]
    public void Probe_FailsAfterAllocatingDmaMemory_ReleasesIt()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        ulong before = 0, after = 0;
        var driver = new FakePciDriver("fake", s_idA)
        {
            OnProbe = dev =>
            {
                Assert.Equal(Errno.Ok, dev.AllocCoherent(8 * TestMachine.Page, out _));
                return Errno.EIO;
            },
        };

        m.Run(() =>
        {
            bus.Plug(0, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            before = m.Kernel.Memory.FreePages;
            bus.RegisterDriver(driver);
            after = m.Kernel.Memory.FreePages;
        });

        Assert.Equal(before, after);
        Assert.Equal(0, bus.DmaPagesInUse);
    }

    [Fact]
    public void UnregisterDriver_BoundFunction_CallsRemoveAndUnbinds()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new FakePciDriver("fake", s_idA);
        string? boundName = "unset";

        m.Run(() =>
        {
            bus.Plug(3, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bus.RegisterDriver(driver);
            bus.UnregisterDriver(driver);
            boundName = bus.Enumerate().Single().Driver;
        });

        Assert.Equal([3], driver.RemovedSlots);
        Assert.Null(boundName);
    }

    [Fact]
    public void Unplug_BoundFunction_RemovesDriverAndFunction()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new FakePciDriver("fake", s_idA);
        int remaining = -1;

        m.Run(() =>
        {
            bus.Plug(3, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bus.RegisterDriver(driver);
            bus.Unplug(3);
            remaining = bus.Enumerate().Count;
        });

        Assert.Equal([3], driver.RemovedSlots);
        Assert.Equal(0, remaining);
    }

    [Fact]
    public void RequestIrq_OnHandleAfterRemove_Throws()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new FakePciDriver("fake", s_idA);

        var ex = Assert.Throws<KernelRuleViolationException>(() => m.Run(() =>
        {
            bus.Plug(0, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bus.RegisterDriver(driver);
            var stale = driver.Bound.Single();
            bus.UnregisterDriver(driver);
            stale.RequestIrq(0, _ => IrqReturn.Handled, "late");
        }));

        Assert.Contains("already removed", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bar_Write32ThenRead32_ReachesDeviceRegister()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var device = new FakePciDevice(s_idA.VendorId, s_idA.DeviceId);
        var driver = new FakePciDriver("fake", s_idA);
        uint readBack = 0;

        m.Run(() =>
        {
            bus.Plug(0, device);
            bus.RegisterDriver(driver);
            var bar = driver.Bound.Single().Bar(0)!;
            bar.Write32(0x10, 0xcafe_f00d);
            readBack = bar.Read32(0x10);
        });

        Assert.Equal(0xcafe_f00du, readBack);
        Assert.Equal(0xcafe_f00dUL, device.Bar0.Read(0x10, 4));
    }

    [Fact]
    public void Bar_AccessTheDeviceRejects_ReturnsTheDevicesAllOnesAnswer()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new FakePciDriver("fake", s_idA);
        ulong value = 0;

        m.Run(() =>
        {
            bus.Plug(0, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bus.RegisterDriver(driver);
            value = driver.Bound.Single().Bar(0)!.Read64(0x08); // the fake device answers only 32-bit accesses
        });

        Assert.Equal(ulong.MaxValue, value);
    }

    [Fact]
    public void Bar_UnimplementedBar_ReturnsNull()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new FakePciDriver("fake", s_idA);
        PciBar? bar1 = null;
        bool called = false;

        m.Run(() =>
        {
            bus.Plug(0, new FakePciDevice(s_idA.VendorId, s_idA.DeviceId));
            bus.RegisterDriver(driver);
            bar1 = driver.Bound.Single().Bar(1);
            called = true;
        });

        Assert.True(called);
        Assert.Null(bar1);
    }

    [Fact]
    public void FunctionLevelReset_BoundFunction_RunsDeviceResetAndKeepsDriverBound()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var device = new FakePciDevice(s_idA.VendorId, s_idA.DeviceId);
        var driver = new FakePciDriver("fake", s_idA);
        uint afterReset = 1;

        m.Run(() =>
        {
            bus.Plug(0, device);
            bus.RegisterDriver(driver);
            var dev = driver.Bound.Single();
            dev.Bar(0)!.Write32(0, 0x1234);
            dev.FunctionLevelReset();
            afterReset = dev.Bar(0)!.Read32(0);
        });

        Assert.Equal(1, device.Resets);
        Assert.Equal(0u, afterReset);
        Assert.True(driver.Bound.Single().IsBound);
    }
}
