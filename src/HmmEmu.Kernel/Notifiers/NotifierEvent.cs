namespace HmmEmu.Kernel.Notifiers;

/// <summary>Why an invalidation happens (enum mmu_notifier_event), with the kernel's values.</summary>
public enum NotifierEvent
{
    /// <summary>MMU_NOTIFY_UNMAP: the range is being unmapped (munmap, MAP_FIXED replace, exit, OOM reap).</summary>
    Unmap = 0,

    /// <summary>MMU_NOTIFY_CLEAR: pages are cleared but the VMA stays (madvise(DONTNEED), COW break, reclaim).</summary>
    Clear = 1,

    /// <summary>MMU_NOTIFY_PROTECTION_VMA: the VMA's protection changes (mprotect).</summary>
    ProtectionVma = 2,

    /// <summary>MMU_NOTIFY_PROTECTION_PAGE: page protection changes without a VMA change (fork write-protects for COW).</summary>
    ProtectionPage = 3,

    /// <summary>MMU_NOTIFY_SOFT_DIRTY: soft-dirty tracking write-protects pages.</summary>
    SoftDirty = 4,

    /// <summary>MMU_NOTIFY_RELEASE: the address space is going away (exit_mmap).</summary>
    Release = 5,

    /// <summary>MMU_NOTIFY_MIGRATE: pages move between RAM and device memory; <c>Owner</c> names the migrating device.</summary>
    Migrate = 6,

    /// <summary>MMU_NOTIFY_EXCLUSIVE: a device takes exclusive access; <c>Owner</c> names it.</summary>
    Exclusive = 7,
}
