namespace HmmEmu.Gpu.Model;

/// <summary>
/// One of the 16 hardware contexts as the compute engine tracks it. Every field is guarded by the engine's lock
/// (<c>GpuComputeEngine._lock</c>); <see cref="Current"/> and <see cref="Progress"/> are additionally touched only by
/// the engine's worker, which runs a step over a copy of them outside the lock.
/// </summary>
internal sealed class GpuContextSlot(int id)
{
    /// <summary>The context number (address-space id).</summary>
    public readonly ushort Id = (ushort)id;

    /// <summary>Commands dispatched and not started, in ring order.</summary>
    public readonly Queue<GpuCommandEntry> Fifo = new();

    /// <summary>CTX_CONTROL.VALID as the engine last saw it.</summary>
    public bool Valid;

    /// <summary>VALID went 1→0 and the worker has not yet failed the context's work.</summary>
    public bool InvalidatePending;

    /// <summary>VALID was cleared and set again before the worker saw the clear: the command that was running then
    /// fails at the worker's next look at this context, without touching the new epoch's error state.</summary>
    public bool FailCurrentQuietly;

    /// <summary>The state CTX_STATUS reports.</summary>
    public GpuContextState State;

    /// <summary>The error CTX_STATUS reports.</summary>
    public GpuContextError Error;

    /// <summary>CTX_ERROR_ADDRESS.</summary>
    public ulong ErrorAddress;

    /// <summary>CTX_COMPLETED.</summary>
    public ulong Completed;

    /// <summary>The trace span of the running LAUNCH, from its start to its completion (default when none runs).</summary>
    public HmmEmu.Simulation.TraceSpan KernelSpan;

    /// <summary>Whether <see cref="Current"/> holds a started LAUNCH.</summary>
    public bool HasCurrent;

    /// <summary>The running LAUNCH.</summary>
    public GpuCommand Current;

    /// <summary>The running LAUNCH's progress.</summary>
    public KernelProgress Progress;

    /// <summary>The running LAUNCH is stalled on a replayable fault.</summary>
    public bool Stalled;

    /// <summary>The replay generation when the stall began: a later FAULT_REPLAY resumes it.</summary>
    public long StallGeneration;

    /// <summary>The stalled access's address.</summary>
    public ulong FaultAddress;

    /// <summary>FAULT_CANCEL named this context while it was stalled.</summary>
    public bool CancelRequested;

    /// <summary>Whether the context holds work: running, stalled or queued.</summary>
    public bool HasWork => HasCurrent || Fifo.Count != 0;
}
