namespace HmmEmu.Kernel.Migration;

/// <summary>Which pages <see cref="Migrate.VmaSetup"/> collects (enum migrate_vma_direction).</summary>
[Flags]
public enum MigrateSelect
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>MIGRATE_VMA_SELECT_SYSTEM: system RAM pages, the zero page and empty anonymous slots.</summary>
    System = 1 << 0,

    /// <summary>MIGRATE_VMA_SELECT_DEVICE_PRIVATE: device-private pages of the pgmap owner.</summary>
    DevicePrivate = 1 << 1,

    /// <summary>MIGRATE_VMA_SELECT_DEVICE_COHERENT: device-coherent pages of the pgmap owner.</summary>
    DeviceCoherent = 1 << 2,

    /// <summary>
    /// MIGRATE_VMA_SELECT_COMPOUND: collect a whole, 2 MiB-aligned huge page (a THP, a device-private THP, or an empty or
    /// zero-page 2 MiB block of a THP-enabled VMA) as one <see cref="MigratePfn.Compound"/> entry instead of splitting it.
    /// </summary>
    Compound = 1 << 3,
}
