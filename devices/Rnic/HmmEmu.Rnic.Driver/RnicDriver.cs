using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;

namespace HmmEmu.Rnic.Driver;

/// <summary>
/// The PCI driver of the HmmEmu RDMA NIC: binds to <see cref="RnicRegisters.VendorId"/>:<see cref="RnicRegisters.DeviceId"/>
/// and keeps one <see cref="RnicDevice"/> per bound function.
/// </summary>
public sealed class RnicDriver : IPciDriver
{
    private readonly HostKernel _kernel;
    private readonly List<RnicDevice> _devices = [];
    private readonly Lock _lock = new();

    /// <summary>Creates the driver for <paramref name="kernel"/>; register it with a <see cref="PciBus"/>.</summary>
    public RnicDriver(HostKernel kernel, RnicDriverOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        Options = options ?? RnicDriverOptions.Default;
    }

    /// <inheritdoc />
    public string Name => "hmmemu-rnic";

    /// <inheritdoc />
    public IReadOnlyList<PciDeviceId> IdTable { get; } = [new PciDeviceId(RnicRegisters.VendorId, RnicRegisters.DeviceId)];

    /// <summary>The driver's tunables.</summary>
    public RnicDriverOptions Options { get; }

    /// <summary>The bound devices, in probe order.</summary>
    public IReadOnlyList<RnicDevice> Devices
    {
        get
        {
            lock (_lock)
                return [.. _devices];
        }
    }

    /// <inheritdoc />
    public Errno Probe(PciDev dev)
    {
        ArgumentNullException.ThrowIfNull(dev);
        var device = new RnicDevice(_kernel, dev, Options);
        var err = device.Probe();
        if (err != Errno.Ok)
            return err;
        dev.DriverData = device;
        lock (_lock)
            _devices.Add(device);
        return Errno.Ok;
    }

    /// <inheritdoc />
    public void Remove(PciDev dev)
    {
        ArgumentNullException.ThrowIfNull(dev);
        if (dev.DriverData is not RnicDevice device)
            return;
        device.Remove();
        lock (_lock)
            _devices.Remove(device);
        dev.DriverData = null;
    }
}
