namespace HmmEmu.Testing.Demo;

/// <summary>One line of the demo's summary: a workload, its verdict and what it cost.</summary>
/// <param name="Id">The workload's id.</param>
/// <param name="Title">What it does.</param>
/// <param name="Verified">Its result matched the CPU's computation.</param>
/// <param name="Detail">What was checked and what the machine did.</param>
/// <param name="WallMs">Host time the workload took (measured for the report only).</param>
/// <param name="Counters">Counter differences over the workload (virtual time included).</param>
/// <param name="UsesGpu">The workload drives the GPU (its fault batches are meaningful; otherwise the column shows "-").</param>
public sealed record DemoRow(string Id, string Title, bool Verified, string Detail, double WallMs, DemoCounters Counters, bool UsesGpu)
{
    /// <summary>TLB hits over lookups in percent, or null without lookups.</summary>
    public double? TlbHitPercent =>
        Counters.TlbHits + Counters.TlbMisses == 0 ? null : 100.0 * Counters.TlbHits / (Counters.TlbHits + Counters.TlbMisses);
}
