namespace HmmEmu.Kernel.Bus;

/// <summary>
/// A PCI driver (struct pci_driver): the ids it binds to and its probe/remove entry points. The bus calls
/// <see cref="Probe"/> and <see cref="Remove"/> in process context with the function's device lock held; both may
/// sleep.
/// </summary>
public interface IPciDriver
{
    /// <summary>The driver's name, for traces and reports.</summary>
    string Name { get; }

    /// <summary>The functions this driver binds to.</summary>
    IReadOnlyList<PciDeviceId> IdTable { get; }

    /// <summary>
    /// Binds to <paramref name="dev"/>: map BARs, request interrupts, allocate DMA memory, start the device.
    /// Anything but <see cref="Errno.Ok"/> leaves the function unbound, and the bus releases whatever the driver
    /// acquired through the handle. May sleep.
    /// </summary>
    Errno Probe(PciDev dev);

    /// <summary>
    /// Unbinds from <paramref name="dev"/>: quiesce the device. Afterwards the bus frees the interrupts (waiting for
    /// running handlers) and the DMA memory the driver still holds. May sleep.
    /// </summary>
    void Remove(PciDev dev);
}
