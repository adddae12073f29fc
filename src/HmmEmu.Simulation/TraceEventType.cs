namespace HmmEmu.Simulation;

/// <summary>
/// A kind of trace event, declared once (usually as a static field) by the component that emits it. Its identity
/// in the trace hash is the stable hash of its category and name, so the hash does not depend on declaration order.
/// </summary>
public sealed class TraceEventType
{
    /// <summary>Declares an event type.</summary>
    /// <param name="category">Subsystem, e.g. "mm", "notifier", "sched".</param>
    /// <param name="name">Event name, e.g. "invalidate_start".</param>
    /// <param name="argNames">Names of the up to three numeric arguments, for trace export.</param>
    public TraceEventType(string category, string name, params string[] argNames)
        : this(category, name, TraceEventPhase.Instant, argNames)
    {
    }

    internal TraceEventType(string category, string name, TraceEventPhase phase, string[] argNames)
    {
        ArgumentException.ThrowIfNullOrEmpty(category);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (argNames.Length > 3)
            throw new ArgumentException($"A trace event carries at most three arguments; '{category}.{name}' declares {argNames.Length}.", nameof(argNames));
        Category = category;
        Name = name;
        ArgNames = argNames;
        Phase = phase;
        ulong id = StableHash.Of(category + "." + name);
        Id = phase == TraceEventPhase.Instant ? id : StableHash.Fold(id, (ulong)phase);
    }

    /// <summary>
    /// Declares a counter: each <see cref="Trace.Record"/> of it samples up to three values (A, B, C), one series per
    /// argument name, e.g. <c>TraceEventType.Counter("gpu", "vram", "used_pages")</c>.
    /// </summary>
    public static TraceEventType Counter(string category, string name, params string[] seriesNames)
    {
        if (seriesNames.Length == 0)
            throw new ArgumentException($"Counter '{category}.{name}' needs at least one series name.", nameof(seriesNames));
        return new TraceEventType(category, name, TraceEventPhase.Counter, seriesNames);
    }

    /// <summary>What the event marks: a point (the default), a span's begin or end, or a counter sample.</summary>
    public TraceEventPhase Phase { get; }

    /// <summary>The subsystem that emits this event.</summary>
    public string Category { get; }

    /// <summary>The event's name within its category.</summary>
    public string Name { get; }

    /// <summary>Names of the numeric arguments (A, B, C).</summary>
    public IReadOnlyList<string> ArgNames { get; }

    /// <summary>The stable identity folded into the trace hash.</summary>
    public ulong Id { get; }

    /// <inheritdoc />
    public override string ToString() => Category + "." + Name;
}
