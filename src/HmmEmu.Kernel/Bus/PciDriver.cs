namespace HmmEmu.Kernel.Bus;

/// <summary>
/// A PCI driver that keeps one device object per bound function (as a Linux driver keeps its private data with
/// <c>pci_set_drvdata</c>): probe creates it and stores it in <see cref="PciDev.DriverData"/>, remove tears it down.
/// Derived drivers say how to create and remove one device; the bookkeeping is here.
/// </summary>
/// <typeparam name="TDevice">The driver's per-function device object.</typeparam>
public abstract class PciDriver<TDevice> : IPciDriver where TDevice : class
{
    private readonly List<TDevice> _devices = [];
    private readonly Lock _lock = new();

    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public abstract IReadOnlyList<PciDeviceId> IdTable { get; }

    /// <summary>The bound devices, in probe order.</summary>
    public IReadOnlyList<TDevice> Devices
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
        var err = ProbeDevice(dev, out var device);
        if (err != Errno.Ok)
            return err;
        dev.DriverData = device;
        lock (_lock)
            _devices.Add(device!);
        return Errno.Ok;
    }

    /// <inheritdoc />
    public void Remove(PciDev dev)
    {
        ArgumentNullException.ThrowIfNull(dev);
        if (dev.DriverData is not TDevice device)
            return;
        RemoveDevice(device);
        lock (_lock)
            _devices.Remove(device);
        dev.DriverData = null;
    }

    /// <summary>
    /// Creates and starts the device object for <paramref name="dev"/> (process context, device lock held; may
    /// sleep). Returns the errno that fails the probe, with <paramref name="device"/> set only on success.
    /// </summary>
    protected abstract Errno ProbeDevice(PciDev dev, out TDevice? device);

    /// <summary>Stops and releases <paramref name="device"/> (process context, device lock held; may sleep).</summary>
    protected abstract void RemoveDevice(TDevice device);
}
