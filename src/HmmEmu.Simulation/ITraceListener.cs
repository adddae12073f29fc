namespace HmmEmu.Simulation;

/// <summary>Receives every trace event as it is recorded (for checkers and exporters).</summary>
public interface ITraceListener
{
    /// <summary>Called synchronously, on the recording thread, for each event.</summary>
    void OnEvent(in TraceEvent traceEvent);
}
