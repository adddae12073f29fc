namespace HmmEmu.Gpu;

/// <summary>
/// Addresses in copy-engine descriptors of context 0 (physical mode, used for migration): bit 63 clear is a bus
/// address in system RAM (from dma_map_page), bit 63 set is a byte offset into VRAM. Descriptors of contexts 1..15
/// carry device virtual addresses translated through that context's page table.
/// </summary>
public static class GpuCopyAddress
{
    /// <summary>The VRAM aperture bit.</summary>
    public const ulong VramBit = 1UL << 63;

    /// <summary>The copy address of VRAM byte <paramref name="offset"/>.</summary>
    public static ulong Vram(ulong offset)
    {
        if ((offset & VramBit) != 0)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "A VRAM offset must be below 2^63.");
        return VramBit | offset;
    }

    /// <summary>The copy address of system bus address <paramref name="busAddress"/>.</summary>
    public static ulong System(ulong busAddress)
    {
        if ((busAddress & VramBit) != 0)
            throw new ArgumentOutOfRangeException(nameof(busAddress), busAddress, "A bus address must be below 2^63.");
        return busAddress;
    }

    /// <summary>Whether <paramref name="address"/> is in VRAM.</summary>
    public static bool IsVram(ulong address) => (address & VramBit) != 0;

    /// <summary>The VRAM offset or bus address without the aperture bit.</summary>
    public static ulong Offset(ulong address) => address & ~VramBit;
}
