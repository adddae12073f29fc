using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;

namespace HmmEmu.Gpu.Driver;

/// <summary>
/// The PCI driver of the HmmEmu GPU: binds to <see cref="GpuRegisters.VendorId"/>:<see cref="GpuRegisters.DeviceId"/>
/// and keeps one <see cref="GpuDevice"/> per bound function.
/// </summary>
public sealed class GpuDriver : PciDriver<GpuDevice>
{
    private readonly HostKernel _kernel;

    /// <summary>Creates the driver for <paramref name="kernel"/>; register it with a <see cref="PciBus"/>.</summary>
    public GpuDriver(HostKernel kernel, GpuDriverOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        Options = options ?? GpuDriverOptions.Default;
    }

    /// <inheritdoc />
    public override string Name => "hmmemu-gpu";

    /// <inheritdoc />
    public override IReadOnlyList<PciDeviceId> IdTable { get; } = [new PciDeviceId(GpuRegisters.VendorId, GpuRegisters.DeviceId)];

    /// <summary>The driver's tunables.</summary>
    public GpuDriverOptions Options { get; }

    /// <inheritdoc />
    protected override Errno ProbeDevice(PciDev dev, out GpuDevice? device)
    {
        var d = new GpuDevice(_kernel, dev, Options);
        var err = d.Probe();
        device = err == Errno.Ok ? d : null;
        return err;
    }

    /// <inheritdoc />
    protected override void RemoveDevice(GpuDevice device) => device.Remove();
}
