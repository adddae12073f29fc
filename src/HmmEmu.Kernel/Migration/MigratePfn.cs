namespace HmmEmu.Kernel.Migration;

/// <summary>The encoding of <see cref="MigrateVma.Src"/> and <see cref="MigrateVma.Dst"/> entries (MIGRATE_PFN_*).</summary>
public static class MigratePfn
{
    /// <summary>MIGRATE_PFN_VALID: the entry names a page.</summary>
    public const ulong Valid = 1UL << 0;

    /// <summary>MIGRATE_PFN_MIGRATE: the page (or the empty slot) is selected for migration.</summary>
    public const ulong Migrate = 1UL << 1;

    /// <summary>MIGRATE_PFN_WRITE: the mapping was (or is to be) writable.</summary>
    public const ulong Write = 1UL << 3;

    /// <summary>
    /// MIGRATE_PFN_COMPOUND: in Src, the entry stands for a whole 2 MiB block (the next 511 entries are 0); in Dst, the
    /// driver supplies a 2 MiB page (512 contiguous, naturally aligned, locked frames) for it. A compound source with a
    /// small destination is split, and the driver must then fill all 512 Dst entries with small pages.
    /// </summary>
    public const ulong Compound = 1UL << 4;

    /// <summary>Pages one compound entry stands for (HPAGE_PMD_NR).</summary>
    public const int CompoundPages = 512;

    /// <summary>MIGRATE_PFN_SHIFT.</summary>
    public const int Shift = 6;

    /// <summary>migrate_pfn: a valid entry for <paramref name="pfn"/>.</summary>
    public static ulong From(ulong pfn) => (pfn << Shift) | Valid;

    /// <summary>The pfn of a valid entry (migrate_pfn_to_page), or null.</summary>
    public static ulong? ToPfn(ulong entry) => (entry & Valid) != 0 ? entry >> Shift : null;
}
