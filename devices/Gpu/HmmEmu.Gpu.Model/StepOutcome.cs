namespace HmmEmu.Gpu.Model;

/// <summary>How one compute-engine step (one MMU use over a page span) ended.</summary>
internal enum StepOutcome
{
    /// <summary>Progress was made; the kernel has more to do.</summary>
    Continue = 0,

    /// <summary>The kernel finished.</summary>
    Done = 1,

    /// <summary>A replayable fault: record it and stall the context.</summary>
    Fault = 2,

    /// <summary>An unrecoverable error: fail the command and the context.</summary>
    Fail = 3,
}
