using HmmEmu.Simulation;

namespace HmmEmu.Testing.Demo;

/// <summary>How <see cref="DemoRunner"/> runs the showcase.</summary>
/// <param name="Seed">The simulation's seed (decides every interleaving in deterministic mode).</param>
/// <param name="Mode">Deterministic (seeded, replayable) or threaded (real parallel threads).</param>
/// <param name="Tamper">
/// For tests of the verifiers: the id of a workload (see <see cref="DemoWorkloads.Ids"/>) whose result buffer gets one
/// element overwritten by the CPU in simulated memory just before the final read-back; that workload must then report
/// "not verified". Null in every real run.
/// </param>
/// <param name="TracePath">If set, the whole run is written there as Chrome/Perfetto trace JSON (docs/tracing.md).</param>
/// <param name="Only">If set, the ids of the workloads to run (in the demo's order); null runs them all.</param>
public sealed record DemoOptions(
    ulong Seed = 1, SchedulerMode Mode = SchedulerMode.Deterministic, string? Tamper = null, string? TracePath = null, IReadOnlyList<string>? Only = null)
{
    /// <summary>The default run: seed 1, deterministic.</summary>
    public static DemoOptions Default { get; } = new();
}
