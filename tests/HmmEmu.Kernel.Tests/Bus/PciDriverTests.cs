using HmmEmu.Kernel.Bus;

namespace HmmEmu.Kernel.Tests.Bus;

/// <summary>The per-function bookkeeping of <see cref="PciDriver{TDevice}"/>: probe order, a failed probe, remove.</summary>
public sealed class PciDriverTests
{
    private static readonly PciDeviceId s_id = new(0x1af4, 0x1000);

    [Fact]
    public void Probe_EachFunction_KeepsOneDeviceInProbeOrderAndInDriverData()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new CountingDriver();
        m.Run(() =>
        {
            bus.Plug(3, new FakePciDevice(s_id.VendorId, s_id.DeviceId));
            bus.Plug(1, new FakePciDevice(s_id.VendorId, s_id.DeviceId));
            Assert.Equal(2, bus.RegisterDriver(driver));
        });
        Assert.Equal([1, 3], driver.Devices.Select(d => d.Slot));
        Assert.All(driver.Devices, d => Assert.Same(d, d.Dev.DriverData));
    }

    [Fact]
    public void Probe_Failing_LeavesNoDeviceAndNoDriverData()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new CountingDriver { Fail = Errno.ENODEV };
        PciDev? seen = null;
        m.Run(() =>
        {
            bus.Plug(0, new FakePciDevice(s_id.VendorId, s_id.DeviceId));
            Assert.Equal(0, bus.RegisterDriver(driver));
            seen = driver.LastProbed;
        });
        Assert.Empty(driver.Devices);
        Assert.Null(seen!.DriverData);
    }

    [Fact]
    public void Remove_Unbind_RemovesTheDeviceAndClearsDriverData()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = new CountingDriver();
        m.Run(() =>
        {
            bus.Plug(0, new FakePciDevice(s_id.VendorId, s_id.DeviceId));
            bus.RegisterDriver(driver);
            bus.UnregisterDriver(driver);
        });
        Assert.Empty(driver.Devices);
        Assert.Equal(1, driver.Removed);
        Assert.Null(driver.LastProbed!.DriverData);
    }

    private sealed record Device(PciDev Dev, int Slot);

    private sealed class CountingDriver : PciDriver<Device>
    {
        public Errno Fail { get; init; } = Errno.Ok;

        public PciDev? LastProbed { get; private set; }

        public int Removed { get; private set; }

        public override string Name => "counting";

        public override IReadOnlyList<PciDeviceId> IdTable { get; } = [s_id];

        protected override Errno ProbeDevice(PciDev dev, out Device? device)
        {
            LastProbed = dev;
            device = Fail == Errno.Ok ? new Device(dev, dev.Slot) : null;
            return Fail;
        }

        protected override void RemoveDevice(Device device) => Removed++;
    }
}
