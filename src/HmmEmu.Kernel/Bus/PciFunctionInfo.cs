namespace HmmEmu.Kernel.Bus;

/// <summary>One function found by enumeration (what lspci shows).</summary>
/// <param name="Slot">The slot it is plugged into.</param>
/// <param name="VendorId">PCI vendor id.</param>
/// <param name="DeviceId">PCI device id.</param>
/// <param name="ClassCode">PCI class code.</param>
/// <param name="Driver">The bound driver's name, or null if unbound.</param>
public readonly record struct PciFunctionInfo(int Slot, ushort VendorId, ushort DeviceId, uint ClassCode, string? Driver)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Slot:x2}.0 [{ClassCode:x6}] {VendorId:x4}:{DeviceId:x4}{(Driver is null ? "" : " driver=" + Driver)}";
}
