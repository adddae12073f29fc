namespace HmmEmu.Simulation;

/// <summary>How simulated threads are run.</summary>
public enum SchedulerMode
{
    /// <summary>
    /// One simulated thread runs at a time; every yield point is a decision drawn from the seed, so the same seed
    /// gives the same interleaving, the same virtual times and the same trace hash.
    /// </summary>
    Deterministic,

    /// <summary>Simulated threads run in parallel on real threads; yield points cost nothing. For throughput and stress.</summary>
    Threaded,
}
