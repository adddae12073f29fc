namespace HmmEmu.Gpu.Driver;

/// <summary>A snapshot of one context's counters.</summary>
/// <param name="Launches">Kernels launched.</param>
/// <param name="Faults">Fault records received for the context.</param>
/// <param name="FaultGroups">Page ranges resolved after sorting and merging the records.</param>
/// <param name="Batches">Fault batches that involved the context (each ends with one replay).</param>
/// <param name="Cancels">Faults the driver could not resolve and cancelled.</param>
/// <param name="PagesMapped">Device page-table leaves written by fault handling.</param>
/// <param name="Invalidations">Invalidate callbacks that removed device mappings (each with a TLB invalidation).</param>
/// <param name="PagesZapped">Device page-table leaves removed by invalidations and by the driver before migrating.</param>
/// <param name="MigratedToVram">Pages this context's prefetches and migrate-on-fault moved to VRAM.</param>
/// <param name="MigratedToSystem">Pages this context's prefetches moved back to system memory.</param>
/// <param name="AheadWindows">Fault windows mapped ahead of a kernel streaming through memory (fault-ahead).</param>
public readonly record struct GpuContextStats(
    long Launches, long Faults, long FaultGroups, long Batches, long Cancels, long PagesMapped, long Invalidations, long PagesZapped,
    long MigratedToVram, long MigratedToSystem, long AheadWindows);
