namespace HmmEmu.Gpu;

/// <summary>CTX_STATUS.STATE: what a context is doing.</summary>
public enum GpuContextState : uint
{
    /// <summary>Not valid (CTX_CONTROL.VALID clear), or valid with no work queued.</summary>
    Idle = 0,

    /// <summary>Work queued or running.</summary>
    Running = 1,

    /// <summary>Running work is stalled on a replayable fault, waiting for FAULT_REPLAY or FAULT_CANCEL.</summary>
    Stalled = 2,

    /// <summary>Stopped by an error (CTX_STATUS.ERROR); commands for it finish failed until VALID is set again.</summary>
    Error = 3,
}
