using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;

namespace MyDevice.Driver;

/// <summary>
/// The PCI driver: binds to every function with the Spec's vendor and device id, checks the ID register and keeps one
/// <see cref="MyDevDevice"/> per bound function (<see cref="PciDriver{TDevice}.Devices"/>).
/// </summary>
/// <param name="kernel">The kernel the driver runs on.</param>
public sealed class MyDevDriver(HostKernel kernel) : PciDriver<MyDevDevice>
{
    private static readonly PciDeviceId[] s_ids = [new(MyDevRegisters.VendorId, MyDevRegisters.DeviceId)];

    /// <inheritdoc />
    public override string Name => "MyDev";

    /// <inheritdoc />
    public override IReadOnlyList<PciDeviceId> IdTable => s_ids;

    /// <summary>Maps BAR0 and checks the ID register; ENODEV for a device that is not ours. May sleep.</summary>
    protected override Errno ProbeDevice(PciDev dev, out MyDevDevice? device)
    {
        ArgumentNullException.ThrowIfNull(dev);
        device = null;
        if (dev.Bar(0) is not { } bar0 || bar0.Length < MyDevRegisters.Bar0Size || bar0.Read32(MyDevRegisters.Id) != MyDevRegisters.IdValue)
            return Errno.ENODEV;
        device = new MyDevDevice(kernel, dev, bar0);
        return Errno.Ok;
    }

    /// <summary>Unbinds: the device must not be open any more. May sleep.</summary>
    protected override void RemoveDevice(MyDevDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        device.Remove();
    }
}
