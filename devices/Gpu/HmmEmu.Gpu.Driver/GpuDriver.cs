using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;

namespace HmmEmu.Gpu.Driver;

/// <summary>
/// The PCI driver of the HmmEmu GPU: binds to <see cref="GpuRegisters.VendorId"/>:<see cref="GpuRegisters.DeviceId"/>
/// and keeps one <see cref="GpuDevice"/> per bound function.
/// </summary>
public sealed class GpuDriver : IPciDriver
{
    private readonly HostKernel _kernel;
    private readonly List<GpuDevice> _devices = [];
    private readonly Lock _lock = new();

    /// <summary>Creates the driver for <paramref name="kernel"/>; register it with a <see cref="PciBus"/>.</summary>
    public GpuDriver(HostKernel kernel, GpuDriverOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        Options = options ?? GpuDriverOptions.Default;
    }

    /// <inheritdoc />
    public string Name => "hmmemu-gpu";

    /// <inheritdoc />
    public IReadOnlyList<PciDeviceId> IdTable { get; } = [new PciDeviceId(GpuRegisters.VendorId, GpuRegisters.DeviceId)];

    /// <summary>The driver's tunables.</summary>
    public GpuDriverOptions Options { get; }

    /// <summary>The bound devices, in probe order.</summary>
    public IReadOnlyList<GpuDevice> Devices
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
        var device = new GpuDevice(_kernel, dev, Options);
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
        if (dev.DriverData is not GpuDevice device)
            return;
        device.Remove();
        lock (_lock)
            _devices.Remove(device);
        dev.DriverData = null;
    }
}
