namespace HmmEmu.Simulation;

/// <summary>
/// An open span, returned by <see cref="Trace.Begin"/>. End it once, with <see cref="End"/> or by disposing it
/// (<c>using var span = trace.Begin(...)</c>); ending the default value does nothing. A span that is never ended is
/// closed by exporters when they stop.
/// </summary>
public readonly struct TraceSpan : IDisposable, IEquatable<TraceSpan>
{
    private readonly Trace? _trace;
    private readonly TraceSpanType? _type;

    internal TraceSpan(Trace trace, TraceSpanType type, long id)
    {
        _trace = trace;
        _type = type;
        Id = id;
    }

    /// <summary>The span's identity: the sequence number of its begin event plus one (0 for the default value).</summary>
    public long Id { get; }

    /// <summary>Whether this is a span returned by <see cref="Trace.Begin"/> (not the default value).</summary>
    public bool IsValid => _trace is not null;

    /// <summary>Records the end of the span at the current virtual time, with a result (e.g. an errno or a count).</summary>
    public void End(ulong result = 0)
    {
        if (_trace is not null)
            _trace.RecordEnd(_type!, Id, result);
    }

    /// <summary>Ends the span with result 0.</summary>
    public void Dispose() => End();

    /// <inheritdoc />
    public bool Equals(TraceSpan other) => ReferenceEquals(_trace, other._trace) && Id == other.Id;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is TraceSpan other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => Id.GetHashCode();

    /// <summary>Whether two values name the same span.</summary>
    public static bool operator ==(TraceSpan left, TraceSpan right) => left.Equals(right);

    /// <summary>Whether two values name different spans.</summary>
    public static bool operator !=(TraceSpan left, TraceSpan right) => !left.Equals(right);
}
