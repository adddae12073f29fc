using HmmEmu.Hardware.Memory;

namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// The level-1 table a walk reached: the level-2 table-pointer entry that names it, and where that entry was read.
/// It is what the <see cref="PageWalkCache"/> keeps, so that a later walk in the same 2 MiB region reads only its
/// level-1 entry and still reports exactly what a full walk would.
/// </summary>
/// <param name="Entry">The level-2 entry (a table pointer: aperture and address of the level-1 table).</param>
/// <param name="EntryAperture">Where <paramref name="Entry"/> was read from.</param>
/// <param name="EntryAddress">The address <paramref name="Entry"/> was read from.</param>
internal readonly record struct LeafTablePointer(DevicePte Entry, Aperture EntryAperture, ulong EntryAddress)
{
    /// <summary>Whether a walk reached a level-1 table (default: it did not).</summary>
    public bool IsValid => Entry.IsValid;
}
