namespace HmmEmu.Hardware.Mmu;

/// <summary>A translation a <see cref="DeviceTlb"/> holds (see <see cref="DeviceTlb.Snapshot"/>).</summary>
/// <param name="Asid">The address-space id it is tagged with.</param>
/// <param name="Address">The 4 KiB page's virtual address.</param>
/// <param name="Pte">The cached 4 KiB leaf: aperture, address and rights.</param>
public readonly record struct TlbEntry(ushort Asid, ulong Address, DevicePte Pte);
