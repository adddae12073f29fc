namespace HmmEmu.Mirror;

/// <summary>One present entry of a mirror's device page table (see <see cref="MirrorFile.DumpPageTable"/>).</summary>
/// <param name="Address">The page-aligned virtual address it translates.</param>
/// <param name="Pfn">The frame: a RAM pfn, or a device-private pfn once the page has migrated to the device.</param>
/// <param name="Writable">Whether the device may write through it.</param>
/// <param name="Atomic">Whether it is a device-exclusive entry made for device atomics.</param>
public readonly record struct MirrorPageTableEntry(ulong Address, ulong Pfn, bool Writable, bool Atomic);
