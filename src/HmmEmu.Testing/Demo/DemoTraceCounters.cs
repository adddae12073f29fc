using HmmEmu.Simulation;

namespace HmmEmu.Testing.Demo;

/// <summary>Counts the kernel trace events the demo reports: handle_mm_fault calls and notifier callbacks.</summary>
internal sealed class DemoTraceCounters : ITraceListener
{
    private long _cpuFaults;
    private long _callbacks;

    /// <summary>handle_mm_fault calls (mm.fault): CPU faults and those hmm_range_fault takes for devices.</summary>
    public long CpuFaults => Interlocked.Read(ref _cpuFaults);

    /// <summary>Interval-notifier invalidate callbacks delivered (mmu_notifier.callback).</summary>
    public long Callbacks => Interlocked.Read(ref _callbacks);

    /// <inheritdoc />
    public void OnEvent(in TraceEvent traceEvent)
    {
        var t = traceEvent.Type;
        if (t.Category == "mm" && t.Name == "fault")
            Interlocked.Increment(ref _cpuFaults);
        else if (t.Category == "mmu_notifier" && t.Name == "callback")
            Interlocked.Increment(ref _callbacks);
    }
}
