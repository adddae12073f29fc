namespace HmmEmu.Simulation;

/// <summary>
/// The one blocking primitive of the simulation: a thread waits until a condition over some state holds, and
/// whoever changes that state wakes the queue. Every kernel lock, completion and wait queue is built on it, so
/// that in deterministic mode every wait is a scheduling decision and in threaded mode it is an ordinary wait.
/// </summary>
/// <remarks>
/// The condition is evaluated without the caller's locks and possibly concurrently with state changes in threaded
/// mode, so it must read its state atomically (for example with <see cref="Interlocked"/>), must be cheap, and
/// must not block. A waker changes the state first and then calls <see cref="WakeAll"/>.
/// </remarks>
public sealed class SimWaitQueue
{
    private readonly Scheduler _scheduler;

    /// <summary>Creates a queue belonging to <paramref name="scheduler"/>.</summary>
    public SimWaitQueue(Scheduler scheduler, string name)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentException.ThrowIfNullOrEmpty(name);
        _scheduler = scheduler;
        Name = name;
    }

    /// <summary>The queue's name, shown in deadlock reports.</summary>
    public string Name { get; }

    /// <summary>The scheduler whose threads wait here.</summary>
    public Scheduler Scheduler => _scheduler;

    // Deterministic mode: the waiting threads, touched only under the scheduler's gate.
    internal List<SimThread> Waiters { get; } = [];

    // Threaded mode: the monitor waiters sleep on, and how many are inside it.
    internal object Monitor { get; } = new();

    internal int ThreadedWaiterCount;

    internal ulong LastWakerTime;

    /// <summary>Returns once <paramref name="condition"/>(<paramref name="state"/>) is true, waiting as long as needed. May sleep.</summary>
    public void WaitUntil<TState>(TState state, Func<TState, bool> condition)
    {
        ArgumentNullException.ThrowIfNull(condition);
        if (condition(state))
            return;
        _scheduler.WaitOn(this, state, condition);
    }

    /// <summary>Wakes every waiting thread so it re-evaluates its condition. Never sleeps.</summary>
    public void WakeAll() => _scheduler.WakeAll(this);

    /// <inheritdoc />
    public override string ToString() => Name;
}
