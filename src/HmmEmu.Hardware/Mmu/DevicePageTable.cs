namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// The geometry of the device page table: 4 levels of 512 64-bit <see cref="DevicePte"/>s, 48-bit device virtual
/// addresses, 4 KiB pages and optional 2 MiB leaves at level 2. Level 4 is the root table (virtual address bits
/// 47:39), level 3 indexes bits 38:30, level 2 bits 29:21 and level 1 bits 20:12. See docs/hardware-mmu.md.
/// </summary>
public static class DevicePageTable
{
    /// <summary>Number of table levels.</summary>
    public const int Levels = 4;

    /// <summary>Entries in one table.</summary>
    public const int EntriesPerTable = 512;

    /// <summary>Bytes in one entry.</summary>
    public const int EntrySize = 8;

    /// <summary>Bytes in one table (one 4 KiB page, 4 KiB aligned).</summary>
    public const int TableSize = EntriesPerTable * EntrySize;

    /// <summary>log2 of the page size.</summary>
    public const int PageShift = 12;

    /// <summary>The page size, and the translation granule of the TLB.</summary>
    public const ulong PageSize = 1UL << PageShift;

    /// <summary>log2 of the size of a level-2 leaf (a large page).</summary>
    public const int LargePageShift = 21;

    /// <summary>The size of a level-2 leaf (2 MiB).</summary>
    public const ulong LargePageSize = 1UL << LargePageShift;

    /// <summary>Width of a device virtual address.</summary>
    public const int VirtualAddressBits = 48;

    /// <summary>The first device virtual address that is out of range.</summary>
    public const ulong VirtualAddressLimit = 1UL << VirtualAddressBits;

    /// <summary>The lowest virtual-address bit that <paramref name="level"/> (1 to 4) indexes.</summary>
    public static int LevelShift(int level)
    {
        CheckLevel(level);
        return PageShift + (9 * (level - 1));
    }

    /// <summary>The index of <paramref name="address"/>'s entry in its table at <paramref name="level"/> (1 to 4).</summary>
    public static int IndexOf(int level, ulong address) => (int)((address >> LevelShift(level)) & (EntriesPerTable - 1));

    /// <summary>
    /// The address of <paramref name="address"/>'s entry in the table at <paramref name="tableAddress"/>, which sits at
    /// <paramref name="level"/> (1 to 4).
    /// </summary>
    public static ulong EntryAddress(ulong tableAddress, int level, ulong address) =>
        tableAddress + ((ulong)IndexOf(level, address) * EntrySize);

    private static void CheckLevel(int level)
    {
        if (level is < 1 or > Levels)
        {
            throw new ArgumentOutOfRangeException(nameof(level), level,
                "Device page-table levels are numbered 4 (root) down to 1 (4 KiB leaves).");
        }
    }
}
