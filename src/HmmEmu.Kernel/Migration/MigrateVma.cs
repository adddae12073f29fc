using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Migration;

/// <summary>The arguments and state of one migration (struct migrate_vma).</summary>
public sealed class MigrateVma
{
    /// <summary>The trace span from setup to finalize (open while the migration is set up).</summary>
    internal TraceSpan TraceSpan { get; set; }

    /// <summary>The VMA to migrate in; [Start, End) must lie inside it.</summary>
    public Vma? Vma { get; set; }

    /// <summary>First address (page aligned).</summary>
    public ulong Start { get; set; }

    /// <summary>End address (exclusive).</summary>
    public ulong End { get; set; }

    /// <summary>One entry per page, filled by setup: <see cref="MigratePfn"/> bits. Must not be changed by the driver.</summary>
    public ulong[]? Src { get; set; }

    /// <summary>One entry per page, filled by the driver before <see cref="Migrate.VmaPages"/>: the new, locked page (or 0 to skip).</summary>
    public ulong[]? Dst { get; set; }

    /// <summary>How many pages setup selected.</summary>
    public ulong CPages { get; internal set; }

    /// <summary>How many pages the range has.</summary>
    public ulong NPages { get; internal set; }

    /// <summary>The pgmap owner: which device pages to select, and the owner carried by the MMU_NOTIFY_MIGRATE invalidation.</summary>
    public object? PgmapOwner { get; set; }

    /// <summary>What to select.</summary>
    public MigrateSelect Flags { get; set; }

    /// <summary>From migrate_to_ram: the faulting device page, already locked by the fault path.</summary>
    public ulong? FaultPage { get; set; }

    // The kernel itself migrates (FOLL_LONGTERM): invalidate as MMU_NOTIFY_CLEAR without an owner.
    internal bool KernelInitiated { get; init; }
}
