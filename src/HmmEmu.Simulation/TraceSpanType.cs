namespace HmmEmu.Simulation;

/// <summary>
/// A kind of span (a slice of time with a start and an end), declared once as a static field by the component that
/// emits it, and opened with <see cref="Trace.Begin"/>. It is a pair of <see cref="TraceEventType"/>s — its begin
/// event carries the declared arguments, its end event a result — so a span costs exactly two trace events.
/// </summary>
public sealed class TraceSpanType
{
    /// <summary>Declares a span type.</summary>
    /// <param name="category">Subsystem, e.g. "gpu", "dma", "migrate".</param>
    /// <param name="name">Span name, e.g. "kernel", "fault_batch".</param>
    /// <param name="crossThread">
    /// Whether the span may end on another simulated thread than the one that began it. Such spans are exported as
    /// async slices (their own track per name) rather than nested in the beginning thread's track.
    /// </param>
    /// <param name="argNames">Names of the up to three numeric arguments of the begin event.</param>
    public TraceSpanType(string category, string name, bool crossThread, params string[] argNames)
    {
        Begin = new TraceEventType(category, name, crossThread ? TraceEventPhase.AsyncBegin : TraceEventPhase.Begin, argNames);
        End = new TraceEventType(category, name, crossThread ? TraceEventPhase.AsyncEnd : TraceEventPhase.End, ["result"]);
    }

    /// <summary>The event recorded when a span of this type begins.</summary>
    public TraceEventType Begin { get; }

    /// <summary>The event recorded when a span of this type ends; its argument A is the result.</summary>
    public TraceEventType End { get; }

    /// <summary>Whether spans of this type may end on another thread.</summary>
    public bool CrossThread => Begin.Phase == TraceEventPhase.AsyncBegin;

    /// <inheritdoc />
    public override string ToString() => Begin.ToString();
}
