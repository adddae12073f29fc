namespace HmmEmu.Kernel.Bus;

/// <summary>
/// A device function as the bus sees it (its configuration header, BARs and reset): what a device model implements
/// to be plugged into a <see cref="PciBus"/>. Drivers never see this interface; they get a <see cref="PciDev"/>.
/// </summary>
public interface IPciDevice
{
    /// <summary>PCI vendor id.</summary>
    ushort VendorId { get; }

    /// <summary>PCI device id.</summary>
    ushort DeviceId { get; }

    /// <summary>PCI class code (base class, sub-class, programming interface: 24 bits).</summary>
    uint ClassCode { get; }

    /// <summary>The function's BARs in BAR order; a null entry is an unimplemented BAR.</summary>
    IReadOnlyList<IMmio?> Bars { get; }

    /// <summary>How many interrupt vectors (MSI-X table entries) the function has.</summary>
    int VectorCount { get; }

    /// <summary>Called once when the function is plugged in: the sink its interrupt messages go to.</summary>
    void Attach(IInterruptSink interrupts);

    /// <summary>
    /// Function-level reset: the function drops in-flight work and returns every register to its reset value.
    /// May sleep (a device drains its engines).
    /// </summary>
    void FunctionLevelReset();
}
