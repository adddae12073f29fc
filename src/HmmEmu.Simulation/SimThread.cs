namespace HmmEmu.Simulation;

/// <summary>
/// A scheduled entity of the simulation: a user thread of a simulated process, a kernel worker or a device engine.
/// Each runs its body on an OS thread of its own while it lives (a pooled carrier); in deterministic mode only the thread holding the scheduler's baton
/// executes, and it gives the baton back at yield points.
/// </summary>
public sealed class SimThread
{
    internal SimThread(Scheduler scheduler, int id, string name, SimThreadKind kind, bool isDaemon, Action body)
    {
        Scheduler = scheduler;
        Id = id;
        Name = name;
        Kind = kind;
        IsDaemon = isDaemon;
        Body = body;
        ExitQueue = new SimWaitQueue(scheduler, "join " + name);
    }

    /// <summary>The scheduler that runs this thread.</summary>
    public Scheduler Scheduler { get; }

    /// <summary>Identifier, unique within the scheduler and assigned in spawn order (deterministic).</summary>
    public int Id { get; }

    /// <summary>Human-readable name used in traces and reports.</summary>
    public string Name { get; }

    /// <summary>What the thread stands for.</summary>
    public SimThreadKind Kind { get; }

    /// <summary>Daemon threads (idle workers) do not keep <see cref="Scheduler.Run(Action?)"/> from returning.</summary>
    public bool IsDaemon { get; }

    /// <summary>The current scheduling state.</summary>
    public SimThreadState State => _state;

    /// <summary>What the thread is blocked on, when it is blocked.</summary>
    public string? WaitReason { get; internal set; }

    /// <summary>The exception the body threw, if it failed.</summary>
    public Exception? Failure { get; internal set; }

    /// <summary>Whether the body has returned or thrown.</summary>
    public bool IsFinished => _state == SimThreadState.Finished;

    internal Action Body { get; }

    internal SemaphoreSlim Baton { get; } = new(0, 1);

    private readonly object _unwoundGate = new();
    private bool _unwound;

    /// <summary>Called by the carrier once the body and the scheduler's exit bookkeeping have returned.</summary>
    internal void MarkUnwound()
    {
        lock (_unwoundGate)
        {
            _unwound = true;
            Monitor.PulseAll(_unwoundGate);
        }
    }

    /// <summary>Waits (host time) until the carrier has left this thread; false on timeout.</summary>
    internal bool WaitUnwound(TimeSpan timeout)
    {
        lock (_unwoundGate)
        {
            // Only MarkUnwound pulses, so one wait that is pulsed means unwound.
            if (!_unwound)
                Monitor.Wait(_unwoundGate, timeout);
            return _unwound;
        }
    }

    internal SimWaitQueue ExitQueue { get; }

    internal ulong WakeTime;

    /// <summary>Set when the run this host-carried thread belongs to ended without it: it must unwind.</summary>
    internal volatile bool AbortRequested;

    internal ulong LocalTime;

    private volatile SimThreadState _state = SimThreadState.Runnable;

    internal void SetState(SimThreadState state) => _state = state;

    /// <summary>Waits until this thread has finished. May sleep.</summary>
    public void Join()
    {
        if (ReferenceEquals(Scheduler.CurrentThread, this))
            throw new InvalidOperationException($"Simulated thread '{Name}' cannot join itself.");
        ExitQueue.WaitUntil(this, static t => t.IsFinished);
    }

    /// <inheritdoc />
    public override string ToString() => $"T{Id} '{Name}' ({Kind}, {State})";
}
