namespace HmmEmu.Simulation;

/// <summary>Everything that decides how a simulation runs. Two runs with equal options in deterministic mode are identical.</summary>
public sealed record SimulationOptions
{
    /// <summary>The master seed: every interleaving, fault-injection choice and random workload value derives from it.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Deterministic (one seeded interleaving) or threaded (real parallelism).</summary>
    public SchedulerMode Mode { get; init; } = SchedulerMode.Deterministic;

    /// <summary>Virtual-time costs charged by simulated code.</summary>
    public TimingModel Timing { get; init; } = TimingModel.Default;

    /// <summary>
    /// Deterministic mode: the chance that a yield point hands the CPU to another runnable thread rather than
    /// continuing the current one. Higher values explore more interleavings at the cost of more thread hand-offs.
    /// </summary>
    public double SwitchProbability { get; init; } = 0.25;

    /// <summary>
    /// Deterministic mode: when set, the scheduler takes its choices from this script instead of drawing them from
    /// the seed (the seed still drives every other random stream). Used to replay and shrink an interleaving.
    /// </summary>
    public ScheduleScript? Schedule { get; init; }

    /// <summary>
    /// Threaded mode: how long <see cref="Scheduler.Run(Action?)"/> waits for the simulated threads before declaring a hang.
    /// This is a watchdog on the host, never an input to the simulation.
    /// </summary>
    public TimeSpan ThreadedWatchdog { get; init; } = TimeSpan.FromMinutes(2);

    /// <inheritdoc />
    public override string ToString() =>
        $"seed={Seed} mode={Mode} switch-probability={SwitchProbability}" + (Schedule is null ? "" : $" schedule={Schedule}");
}
