namespace HmmEmu.Kernel;

/// <summary>
/// Thrown when the simulated kernel finds its own internal invariant broken (the equivalent of BUG_ON): this is a
/// defect in HmmEmu, not in the driver under test. Please report it with the seed.
/// </summary>
public sealed class KernelBugException : Exception
{
    /// <summary>Creates the exception with a description of the broken invariant.</summary>
    public KernelBugException(string message) : base(message) { }

    /// <summary>Creates the exception with a description and a cause.</summary>
    public KernelBugException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates an empty exception.</summary>
    public KernelBugException() { }
}
