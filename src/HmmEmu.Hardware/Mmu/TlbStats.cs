namespace HmmEmu.Hardware.Mmu;

/// <summary>A snapshot of one TLB's counters.</summary>
/// <param name="Hits">Lookups that found their page.</param>
/// <param name="Misses">Lookups that did not.</param>
/// <param name="Walks">Page-table walks started on a miss.</param>
/// <param name="WalkFaults">Walks that ended in a status other than Ok (including permission faults).</param>
/// <param name="Fills">Entries installed from a walk.</param>
/// <param name="FillsDiscarded">Walk results not installed because an invalidation ran during the walk.</param>
/// <param name="Evictions">Valid entries replaced by a fill into a full set.</param>
/// <param name="Invalidations">Invalidation commands (page, range, id or all).</param>
/// <param name="EntriesDropped">Valid entries removed by invalidations.</param>
/// <param name="InvalidationWaits">Invalidations that had to wait for at least one in-flight use.</param>
/// <param name="WalkCacheHits">Walks that started from a level-1 table in the page-walk cache (one entry read).</param>
/// <param name="WalkCacheMisses">Walks that found no usable cached table and read from the root.</param>
public readonly record struct TlbStats(
    long Hits,
    long Misses,
    long Walks,
    long WalkFaults,
    long Fills,
    long FillsDiscarded,
    long Evictions,
    long Invalidations,
    long EntriesDropped,
    long InvalidationWaits,
    long WalkCacheHits,
    long WalkCacheMisses)
{
    /// <summary>Hits over lookups, or 0 before the first lookup.</summary>
    public double HitRate => Hits + Misses == 0 ? 0 : (double)Hits / (Hits + Misses);
}
