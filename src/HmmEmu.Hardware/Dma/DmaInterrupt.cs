namespace HmmEmu.Hardware.Dma;

/// <summary>The interrupt causes of a DMA engine; the device wiring maps each to a vector.</summary>
public enum DmaInterrupt
{
    /// <summary>A descriptor flagged <see cref="DmaFlags.InterruptOnCompletion"/> has its completion record posted.</summary>
    Completion = 0,

    /// <summary>
    /// Something went wrong: a completion with an error status, a ring stopped (bad doorbell, malformed entry,
    /// completion-ring overflow), or a ring configuration was refused.
    /// </summary>
    Error = 1,

    /// <summary>A reset finished: every descriptor pending when it started has its completion (most of them aborted).</summary>
    ResetDone = 2,
}
