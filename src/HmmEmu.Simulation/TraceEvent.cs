namespace HmmEmu.Simulation;

/// <summary>One recorded event: when, on which simulated thread, what, and up to three numeric arguments.</summary>
/// <param name="Sequence">Position of the event in the trace, from 0.</param>
/// <param name="Time">Virtual time in nanoseconds.</param>
/// <param name="ThreadId">Simulated thread id, or 0 for code running outside any simulated thread.</param>
/// <param name="Type">The event kind.</param>
/// <param name="A">First argument.</param>
/// <param name="B">Second argument.</param>
/// <param name="C">Third argument.</param>
public readonly record struct TraceEvent(long Sequence, ulong Time, int ThreadId, TraceEventType Type, ulong A, ulong B, ulong C)
{
    /// <summary>For a span's begin and end events, the span's id (the sequence number of its begin event plus one); else 0.</summary>
    public long Span { get; init; }

    /// <inheritdoc />
    public override string ToString()
    {
        var names = Type.ArgNames;
        string Arg(int i, ulong v) => i < names.Count ? $" {names[i]}=0x{v:x}" : "";
        string span = Type.Phase is TraceEventPhase.Instant or TraceEventPhase.Counter ? "" : $" {Type.Phase} span={Span}";
        return $"#{Sequence} t={Time}ns T{ThreadId} {Type}{span}{Arg(0, A)}{Arg(1, B)}{Arg(2, C)}";
    }
}
