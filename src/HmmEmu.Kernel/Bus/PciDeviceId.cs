namespace HmmEmu.Kernel.Bus;

/// <summary>A (vendor, device) pair a driver binds to: one entry of its id table (struct pci_device_id).</summary>
/// <param name="VendorId">PCI vendor id.</param>
/// <param name="DeviceId">PCI device id.</param>
public readonly record struct PciDeviceId(ushort VendorId, ushort DeviceId)
{
    /// <inheritdoc />
    public override string ToString() => $"{VendorId:x4}:{DeviceId:x4}";
}
