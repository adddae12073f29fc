namespace HmmEmu.Gpu.Model;

/// <summary>The outcome of one compute-engine step, with the fault or error details.</summary>
/// <param name="Outcome">How the step ended.</param>
/// <param name="Address">The faulting or offending device address.</param>
/// <param name="Access">The faulting access (faults only).</param>
/// <param name="Reason">Why the walk failed (faults only).</param>
/// <param name="Error">The context error (failures only).</param>
internal readonly record struct StepResult(
    StepOutcome Outcome, ulong Address = 0, GpuFaultAccess Access = 0, GpuFaultReason Reason = 0, GpuContextError Error = GpuContextError.None)
{
    /// <summary>Progress was made.</summary>
    public static StepResult Continue => default;

    /// <summary>The kernel finished.</summary>
    public static StepResult Done => new(StepOutcome.Done);

    /// <summary>A replayable fault at <paramref name="address"/>.</summary>
    public static StepResult Fault(ulong address, GpuFaultAccess access, GpuFaultReason reason) =>
        new(StepOutcome.Fault, address, access, reason);

    /// <summary>A context error at <paramref name="address"/>.</summary>
    public static StepResult Fail(GpuContextError error, ulong address) => new(StepOutcome.Fail, address, Error: error);
}
