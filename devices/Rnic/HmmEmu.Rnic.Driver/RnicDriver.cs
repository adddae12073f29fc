using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;

namespace HmmEmu.Rnic.Driver;

/// <summary>
/// The PCI driver of the HmmEmu RDMA NIC: binds to <see cref="RnicRegisters.VendorId"/>:<see cref="RnicRegisters.DeviceId"/>
/// and keeps one <see cref="RnicDevice"/> per bound function.
/// </summary>
public sealed class RnicDriver : PciDriver<RnicDevice>
{
    private readonly HostKernel _kernel;

    /// <summary>Creates the driver for <paramref name="kernel"/>; register it with a <see cref="PciBus"/>.</summary>
    public RnicDriver(HostKernel kernel, RnicDriverOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        Options = options ?? RnicDriverOptions.Default;
    }

    /// <inheritdoc />
    public override string Name => "hmmemu-rnic";

    /// <inheritdoc />
    public override IReadOnlyList<PciDeviceId> IdTable { get; } = [new PciDeviceId(RnicRegisters.VendorId, RnicRegisters.DeviceId)];

    /// <summary>The driver's tunables.</summary>
    public RnicDriverOptions Options { get; }

    /// <inheritdoc />
    protected override Errno ProbeDevice(PciDev dev, out RnicDevice? device)
    {
        var d = new RnicDevice(_kernel, dev, Options);
        var err = d.Probe();
        device = err == Errno.Ok ? d : null;
        return err;
    }

    /// <inheritdoc />
    protected override void RemoveDevice(RnicDevice device) => device.Remove();
}
