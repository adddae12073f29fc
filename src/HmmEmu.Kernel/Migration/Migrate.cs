using HmmEmu.Annotations;

namespace HmmEmu.Kernel.Migration;

/// <summary>
/// migrate_vma_setup / migrate_vma_pages / migrate_vma_finalize: moving anonymous pages between system memory and
/// device memory. Setup collects and unmaps (migration entries), the driver allocates and copies, pages() commits
/// the new pages to the migration, finalize maps them (or restores the old ones).
/// </summary>
public static class Migrate
{
    /// <summary>
    /// migrate_vma_setup: under an MMU_NOTIFY_MIGRATE invalidation (owner = PgmapOwner), replaces each selectable
    /// page's entry by a migration entry and reports it in Src. EINVAL for no VMA, a VM_IO/PFNMAP/MIXEDMAP VMA, a range
    /// outside it or empty, missing arrays, or a FaultPage that is not a locked device-private page. Pinned or shared
    /// pages and pages whose lock is contended are left out. Caller holds the mmap lock. May sleep.
    /// </summary>
    [MayInvalidate]
    public static Errno VmaSetup(MigrateVma args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return args.Vma is null ? Errno.EINVAL : args.Vma.Mm.MigrateSetup(args);
    }

    /// <summary>migrate_vma_pages: commits the driver's Dst pages; entries without one (or that raced) lose MIGRATE. Caller holds the mmap lock.</summary>
    [MayBlock]
    public static void VmaPages(MigrateVma args)
    {
        ArgumentNullException.ThrowIfNull(args);
        RequireSetUp(args).Mm.MigratePages(args);
    }

    /// <summary>migrate_vma_finalize: maps the new pages where migration succeeded, restores the old ones elsewhere, and drops the pages' locks and references.</summary>
    [MayBlock]
    public static void VmaFinalize(MigrateVma args)
    {
        ArgumentNullException.ThrowIfNull(args);
        RequireSetUp(args).Mm.MigrateFinalize(args);
    }

    private static Vm.Vma RequireSetUp(MigrateVma args) =>
        args.Vma is { } v && args.Src is not null && args.Dst is not null && args.NPages > 0
            ? v
            : throw new InvalidOperationException("migrate_vma_pages/finalize called on arguments that migrate_vma_setup did not accept. Call VmaSetup first and check its result.");
}
