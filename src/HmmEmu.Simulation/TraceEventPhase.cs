namespace HmmEmu.Simulation;

/// <summary>What an event marks on the timeline: a point, one end of a span, or a counter sample.</summary>
public enum TraceEventPhase
{
    /// <summary>A point in time (the default for every <see cref="TraceEventType"/>).</summary>
    Instant,

    /// <summary>The start of a span that ends on the thread that began it (see <see cref="Trace.Begin"/>).</summary>
    Begin,

    /// <summary>The end of a span begun with <see cref="Begin"/>.</summary>
    End,

    /// <summary>The start of a span that may end on another thread (a GPU kernel: launched by one, completed by another).</summary>
    AsyncBegin,

    /// <summary>The end of a span begun with <see cref="AsyncBegin"/>.</summary>
    AsyncEnd,

    /// <summary>A sample of one to three counter values (A, B, C), named by the type's argument names.</summary>
    Counter,
}
