using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// What a page-table walk found: the outcome, where it stopped, and (when a leaf was reached) the 4 KiB page it maps.
/// </summary>
/// <param name="Status">
/// Ok; or the failure: NotPresent (an entry or the root has V clear), Permission (the leaf lacks a right the access
/// needs), OutOfRange (the virtual address is 48 bits or more, or the leaf's page is outside its aperture), BadTable
/// (reserved bits, a leaf where a table must be or the reverse, a misaligned 2 MiB leaf, a table outside memory).
/// </param>
/// <param name="Level">
/// The level of the last entry examined: 4 to 1 for table entries, 0 for the root (or a virtual address that is out
/// of range before any entry was read). On success it is the leaf's level (1, or 2 for a 2 MiB page).
/// </param>
/// <param name="Entry">The last entry examined (the leaf on success; the root at level 0).</param>
/// <param name="EntryAperture">Where <see cref="Entry"/> was read from (meaningless at level 0).</param>
/// <param name="EntryAddress">The address <see cref="Entry"/> was read from (0 at level 0).</param>
/// <param name="Reads">How many entries were read from memory.</param>
/// <param name="Page">
/// When a leaf was reached (<see cref="HasPage"/>): the leaf narrowed to the 4 KiB page containing the address,
/// with the leaf's rights and aperture. A 2 MiB leaf yields the 4 KiB page inside it.
/// </param>
public readonly record struct WalkResult(
    TranslationStatus Status,
    int Level,
    DevicePte Entry,
    Aperture EntryAperture,
    ulong EntryAddress,
    int Reads,
    DevicePte Page)
{
    /// <summary>Whether the walk found a usable leaf (the access may still lack a permission).</summary>
    public bool HasPage => Status is TranslationStatus.Ok or TranslationStatus.Permission;

    /// <summary>Whether the walk translated the address for the access.</summary>
    public bool IsOk => Status == TranslationStatus.Ok;
}
