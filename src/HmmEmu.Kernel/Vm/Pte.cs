using HmmEmu.Kernel.Memory;

namespace HmmEmu.Kernel.Vm;

/// <summary>
/// A CPU page-table entry, encoded like x86-64's: present, writable, dirty, accessed and special bits, a
/// PROT_NONE bit, and the page frame number from bit 12. The all-zero entry is <c>pte_none</c>.
/// </summary>
public readonly record struct Pte(ulong Raw)
{
    private const ulong PresentBit = 1UL << 0;
    private const ulong WriteBit = 1UL << 1;
    private const ulong DirtyBit = 1UL << 2;
    private const ulong AccessedBit = 1UL << 3;
    private const ulong SpecialBit = 1UL << 4;
    private const ulong ProtNoneBit = 1UL << 5;
    private const ulong HugeBit = 1UL << 6;     // present entries only (the type field below is for non-present ones)
    private const ulong SwapHugeBit = 1UL << 9; // non-present entries: a device-private or migration PMD entry
    private const int TypeShift = 6;
    private const ulong TypeMask = 7UL << TypeShift;
    private const ulong DevicePrivateRead = 1UL << TypeShift;
    private const ulong DevicePrivateWrite = 2UL << TypeShift;
    private const ulong MigrationRead = 3UL << TypeShift;
    private const ulong MigrationWrite = 4UL << TypeShift;
    private const ulong ExclusiveWrite = 5UL << TypeShift;
    private const ulong ExclusiveRead = 6UL << TypeShift;
    private const int PfnShift = PhysicalMemory.PageShift;
    private const ulong PfnMask = ((1UL << 40) - 1) << PfnShift;

    /// <summary>The empty entry.</summary>
    public static Pte None => default;

    /// <summary>pte_none: nothing is mapped here.</summary>
    public bool IsNone => Raw == 0;

    /// <summary>pte_present: a page is mapped, accessible or PROT_NONE.</summary>
    public bool IsPresent => (Raw & (PresentBit | ProtNoneBit)) != 0;

    /// <summary>pte_protnone: a page is mapped but no access is allowed.</summary>
    public bool IsProtNone => (Raw & ProtNoneBit) != 0;

    /// <summary>The CPU may read through this entry.</summary>
    public bool IsReadable => (Raw & PresentBit) != 0;

    /// <summary>pte_write: the CPU may write through this entry.</summary>
    public bool IsWritable => (Raw & WriteBit) != 0;

    /// <summary>pte_dirty.</summary>
    public bool IsDirty => (Raw & DirtyBit) != 0;

    /// <summary>pte_young.</summary>
    public bool IsAccessed => (Raw & AccessedBit) != 0;

    /// <summary>pte_special: the frame has no normal page behind it (the zero page, raw pfn maps).</summary>
    public bool IsSpecial => (Raw & SpecialBit) != 0;

    /// <summary>A non-present entry of a device-private page (is_device_private_entry): the CPU faults and the owner migrates it back.</summary>
    public bool IsDevicePrivate => !IsPresent && (Raw & TypeMask) is DevicePrivateRead or DevicePrivateWrite;

    /// <summary>A migration entry (is_migration_entry): the page is being migrated; CPU accesses wait for it.</summary>
    public bool IsMigration => !IsPresent && (Raw & TypeMask) is MigrationRead or MigrationWrite;

    /// <summary>A device-exclusive entry (is_device_exclusive_entry): a device has atomic access; a CPU access restores the mapping first.</summary>
    public bool IsDeviceExclusive => !IsPresent && (Raw & TypeMask) is ExclusiveWrite or ExclusiveRead;

    /// <summary>For a device-private, migration or device-exclusive entry: whether the mapping it stands for is writable.</summary>
    public bool IsWritableEntry => !IsPresent && (Raw & TypeMask) is DevicePrivateWrite or MigrationWrite or ExclusiveWrite;

    /// <summary>
    /// Part of a 2 MiB mapping (a PMD-mapped transparent huge page or hugetlb page, or the non-present PMD entry of a
    /// device-private THP or of a THP under migration): the 512 entries of the table stand for 512 contiguous frames.
    /// Any change to part of it splits it first (split_huge_pmd).
    /// </summary>
    public bool IsHuge => IsPresent ? (Raw & HugeBit) != 0 : (Raw & SwapHugeBit) != 0 && (Raw & TypeMask) != 0;

    /// <summary>The same entry without the huge marker (after a split).</summary>
    public Pte WithoutHuge() => new(Raw & ~(IsPresent ? HugeBit : SwapHugeBit));

    /// <summary>pte_pfn (for non-present device-private and migration entries: the page they stand for).</summary>
    public ulong Pfn => (Raw & PfnMask) >> PfnShift;

    /// <summary>Whether the entry maps the shared zero page.</summary>
    public bool IsZeroPage => IsPresent && IsSpecial && Pfn == PhysicalMemory.ZeroPfn;

    /// <summary>A present entry for <paramref name="pfn"/> with the given access.</summary>
    public static Pte Make(ulong pfn, bool writable, bool special = false, bool huge = false)
    {
        ulong raw = PresentBit | AccessedBit | (pfn << PfnShift) | (huge ? HugeBit : 0);
        if (writable)
            raw |= WriteBit | DirtyBit;
        if (special)
            raw |= SpecialBit;
        return new Pte(raw);
    }

    /// <summary>make_(readable|writable)_device_private_entry for <paramref name="pfn"/>; <paramref name="huge"/> for one of the 512 entries of a device-private PMD.</summary>
    public static Pte MakeDevicePrivate(ulong pfn, bool writable, bool huge = false) =>
        new((pfn << PfnShift) | (writable ? DevicePrivateWrite : DevicePrivateRead) | (huge ? SwapHugeBit : 0));

    /// <summary>make_(readable|writable)_migration_entry for <paramref name="pfn"/>; <paramref name="huge"/> for one of the 512 entries of a PMD migration entry.</summary>
    public static Pte MakeMigration(ulong pfn, bool writable, bool huge = false) =>
        new((pfn << PfnShift) | (writable ? MigrationWrite : MigrationRead) | (huge ? SwapHugeBit : 0));

    /// <summary>A device-exclusive entry for <paramref name="pfn"/>.</summary>
    public static Pte MakeDeviceExclusive(ulong pfn, bool writable) =>
        new((pfn << PfnShift) | (writable ? ExclusiveWrite : ExclusiveRead));

    /// <summary>A PROT_NONE entry that keeps the frame mapped.</summary>
    public Pte MakeProtNone() => new((Raw & ~(PresentBit | WriteBit)) | ProtNoneBit);

    /// <summary>pte_wrprotect.</summary>
    public Pte WriteProtect() => new(Raw & ~WriteBit);

    /// <summary>pte_mkwrite | pte_mkdirty.</summary>
    public Pte MakeWritable() => new(Raw | WriteBit | DirtyBit);

    /// <summary>pte_mkclean.</summary>
    public Pte MakeClean() => new(Raw & ~DirtyBit);

    /// <summary>Restores read (and optionally write) access to a PROT_NONE or read-only entry.</summary>
    public Pte WithAccess(bool readable, bool writable)
    {
        if (IsNone)
            return this;
        ulong raw = Raw & ~(PresentBit | WriteBit | ProtNoneBit);
        if (!readable)
            return new Pte(raw | ProtNoneBit);
        raw |= PresentBit;
        if (writable)
            raw |= WriteBit;
        return new Pte(raw);
    }

    /// <summary>
    /// Whether replacing this entry by <paramref name="next"/> takes anything away from an observer of the old
    /// entry: it unmaps, changes the frame, or drops read or write access. Every such change must be preceded by
    /// an mmu-notifier invalidation of the address.
    /// </summary>
    public bool IsDowngradedBy(Pte next)
    {
        // A migration entry maps nothing a device could have mirrored: it was installed under an invalidation.
        if (IsNone || IsMigration)
            return false;
        if (next.IsNone || next.IsMigration || next.Pfn != Pfn || next.IsPresent != IsPresent || next.IsDevicePrivate != IsDevicePrivate)
            return true;
        if (IsDevicePrivate || IsDeviceExclusive)
            return next.IsDeviceExclusive != IsDeviceExclusive || (IsWritableEntry && !next.IsWritableEntry);
        return (IsReadable && !next.IsReadable) || (IsWritable && !next.IsWritable);
    }

    /// <inheritdoc />
    public override string ToString()
    {
        if (IsNone)
            return "pte_none";
        if (IsDevicePrivate)
            return $"device-private pfn 0x{Pfn:x} {(IsWritableEntry ? "rw" : "r-")}{(IsHuge ? " huge" : "")}";
        if (IsDeviceExclusive)
            return $"device-exclusive pfn 0x{Pfn:x} {(IsWritableEntry ? "rw" : "r-")}";
        if (IsMigration)
            return $"migration pfn 0x{Pfn:x} {(IsWritableEntry ? "rw" : "r-")}{(IsHuge ? " huge" : "")}";
        string access = IsProtNone ? "---" : IsWritable ? "rw" : "r-";
        return $"pfn 0x{Pfn:x} {access}{(IsDirty ? " dirty" : "")}{(IsSpecial ? " special" : "")}{(IsHuge ? " huge" : "")}";
    }
}
