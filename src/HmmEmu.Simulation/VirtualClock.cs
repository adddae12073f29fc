namespace HmmEmu.Simulation;

/// <summary>
/// The simulation's notion of time, in virtual nanoseconds since the scheduler was created. It never reads the
/// wall clock. In deterministic mode there is one global timeline advanced by the scheduler; in threaded mode each
/// simulated thread keeps its own timeline (advanced by what it is charged, and pulled forward when it is woken by
/// a thread that is further ahead), and <see cref="Now"/> is the calling thread's.
/// </summary>
public sealed class VirtualClock
{
    private readonly Scheduler _scheduler;

    internal VirtualClock(Scheduler scheduler) => _scheduler = scheduler;

    /// <summary>The current virtual time, in nanoseconds, as seen by the calling simulated thread.</summary>
    public ulong Now => _scheduler.CurrentTime();

    /// <summary>The furthest virtual time reached by any simulated thread.</summary>
    public ulong Horizon => _scheduler.HorizonTime();

    /// <summary>Converts milliseconds to virtual nanoseconds.</summary>
    public static ulong Milliseconds(ulong ms) => checked(ms * 1_000_000UL);

    /// <summary>Converts microseconds to virtual nanoseconds.</summary>
    public static ulong Microseconds(ulong us) => checked(us * 1_000UL);
}
