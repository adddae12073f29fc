namespace HmmEmu.Simulation;

/// <summary>
/// The event trace of a simulation. Every event is folded into a running 64-bit hash; in deterministic mode the
/// same seed produces the same events in the same order, so two runs agree on <see cref="Hash"/> exactly when they
/// took the same path. Events can also be retained (for export and tests) and observed by listeners.
/// </summary>
public sealed class Trace
{
    private readonly Lock _lock = new();
    private readonly Scheduler _scheduler;
    private readonly List<TraceEvent> _retained = [];
    private ITraceListener[] _listeners = [];
    private ulong _hash = StableHash.Empty;
    private long _count;

    internal Trace(Scheduler scheduler) => _scheduler = scheduler;

    /// <summary>The running hash of every event recorded so far.</summary>
    public ulong Hash
    {
        get { lock (_lock) return _hash; }
    }

    /// <summary>How many events have been recorded.</summary>
    public long Count
    {
        get { lock (_lock) return _count; }
    }

    /// <summary>Whether recorded events are kept in memory (see <see cref="Snapshot"/>). Off by default.</summary>
    public bool RetainEvents { get; set; }

    /// <summary>Adds a listener that sees every subsequent event.</summary>
    public void AddListener(ITraceListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (_lock) _listeners = [.. _listeners, listener];
    }

    /// <summary>Removes a listener added with <see cref="AddListener"/>.</summary>
    public void RemoveListener(ITraceListener listener)
    {
        lock (_lock) _listeners = Array.FindAll(_listeners, l => !ReferenceEquals(l, listener));
    }

    /// <summary>Records an event at the current virtual time on the current simulated thread.</summary>
    public void Record(TraceEventType type, ulong a = 0, ulong b = 0, ulong c = 0)
    {
        ArgumentNullException.ThrowIfNull(type);
        ulong time = _scheduler.CurrentTime();
        int thread = Scheduler.CurrentThread?.Id ?? 0;
        ITraceListener[] listeners;
        TraceEvent ev;
        lock (_lock)
        {
            ev = new TraceEvent(_count++, time, thread, type, a, b, c);
            ulong h = _hash;
            h = StableHash.Fold(h, type.Id);
            h = StableHash.Fold(h, time);
            h = StableHash.Fold(h, (ulong)thread);
            h = StableHash.Fold(h, a);
            h = StableHash.Fold(h, b);
            h = StableHash.Fold(h, c);
            _hash = h;
            if (RetainEvents)
                _retained.Add(ev);
            listeners = _listeners;
        }
        foreach (var l in listeners)
            l.OnEvent(ev);
    }

    /// <summary>A copy of the retained events (empty unless <see cref="RetainEvents"/> was on).</summary>
    public IReadOnlyList<TraceEvent> Snapshot()
    {
        lock (_lock) return [.. _retained];
    }
}
