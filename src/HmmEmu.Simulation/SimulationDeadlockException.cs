namespace HmmEmu.Simulation;

/// <summary>
/// Thrown when no simulated thread can make progress while some non-daemon thread is still waiting: a deadlock
/// in the simulated system (or a wait outside <see cref="Scheduler.Run(Action?)"/> that nothing could ever satisfy).
/// </summary>
public sealed class SimulationDeadlockException : Exception
{
    /// <summary>Creates the exception with a report of who waits on what.</summary>
    public SimulationDeadlockException(string message) : base(message) { }

    /// <summary>Creates the exception with a report and a cause.</summary>
    public SimulationDeadlockException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates an empty exception.</summary>
    public SimulationDeadlockException() { }
}
