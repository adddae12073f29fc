namespace HmmEmu.Hardware.Engines;

/// <summary>How an <see cref="EngineWorker{T}"/> treats the items still queued when it is told to stop.</summary>
public enum WorkerStopMode
{
    /// <summary>Run every queued item, then stop.</summary>
    Drain = 0,

    /// <summary>Abort every queued item (the handler answers each one without running it), then stop.</summary>
    Abort = 1,
}
