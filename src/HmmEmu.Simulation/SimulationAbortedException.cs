namespace HmmEmu.Simulation;

/// <summary>
/// Thrown inside simulated threads while the scheduler tears them down (after a failure or on dispose), to unwind
/// their stacks. Simulated code must not catch it.
/// </summary>
public sealed class SimulationAbortedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SimulationAbortedException() : base("The simulation was aborted.") { }

    /// <summary>Creates the exception with a message.</summary>
    public SimulationAbortedException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public SimulationAbortedException(string message, Exception inner) : base(message, inner) { }
}
