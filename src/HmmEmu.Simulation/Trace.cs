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
    /// <remarks>
    /// Costs one lock and a hash fold whether or not anybody listens; listeners run synchronously after the lock.
    /// For a span type's events use <see cref="Begin"/> and <see cref="TraceSpan.End"/>.
    /// </remarks>
    public void Record(TraceEventType type, ulong a = 0, ulong b = 0, ulong c = 0)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (type.Phase is not (TraceEventPhase.Instant or TraceEventPhase.Counter))
            throw new ArgumentException($"'{type}' is one end of a span ({type.Phase}); open spans with Trace.Begin and close them with TraceSpan.End.", nameof(type));
        RecordCore(type, a, b, c, span: -1);
    }

    /// <summary>
    /// Begins a span of <paramref name="type"/> at the current virtual time on the current simulated thread and
    /// returns its token; the span lasts until <see cref="TraceSpan.End"/>. Costs what <see cref="Record"/> costs.
    /// Unless the type is cross-thread, end it on the same thread, innermost first (like a call).
    /// </summary>
    public TraceSpan Begin(TraceSpanType type, ulong a = 0, ulong b = 0, ulong c = 0)
    {
        ArgumentNullException.ThrowIfNull(type);
        long id = RecordCore(type.Begin, a, b, c, span: 0);
        return new TraceSpan(this, type, id);
    }

    internal void RecordEnd(TraceSpanType type, long span, ulong result) => RecordCore(type.End, result, 0, 0, span);

    // span: -1 for an instant or counter, 0 for a begin (its id is its sequence number + 1), else the id it ends. Returns the span id.
    private long RecordCore(TraceEventType type, ulong a, ulong b, ulong c, long span)
    {
        ulong time = _scheduler.CurrentTime();
        int thread = Scheduler.CurrentThread?.Id ?? 0;
        ITraceListener[] listeners;
        TraceEvent ev;
        long sequence, spanId;
        lock (_lock)
        {
            sequence = _count++;
            spanId = span == 0 ? sequence + 1 : Math.Max(span, 0);
            ev = new TraceEvent(sequence, time, thread, type, a, b, c) { Span = spanId };
            ulong h = _hash;
            h = StableHash.Fold(h, type.Id);
            h = StableHash.Fold(h, time);
            h = StableHash.Fold(h, (ulong)thread);
            h = StableHash.Fold(h, a);
            h = StableHash.Fold(h, b);
            h = StableHash.Fold(h, c);
            if (span >= 0)
                h = StableHash.Fold(h, (ulong)spanId);
            _hash = h;
            if (RetainEvents)
                _retained.Add(ev);
            listeners = _listeners;
        }
        foreach (var l in listeners)
            l.OnEvent(ev);
        return spanId;
    }

    /// <summary>A copy of the retained events (empty unless <see cref="RetainEvents"/> was on).</summary>
    public IReadOnlyList<TraceEvent> Snapshot()
    {
        lock (_lock) return [.. _retained];
    }
}
