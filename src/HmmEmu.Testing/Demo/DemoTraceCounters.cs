using HmmEmu.Simulation;

namespace HmmEmu.Testing.Demo;

/// <summary>
/// Counts the kernel trace events the demo reports (handle_mm_fault calls and notifier callbacks), and sums the
/// virtual time of three kinds of span: GPU kernels (launch to completion), GPU fault batches (the driver handling one
/// drained batch, migrations included) and DMA transfers (one per descriptor, the GPU's copy engine).
/// </summary>
internal sealed class DemoTraceCounters : ITraceListener
{
    private readonly object _lock = new();
    // Open spans of the three kinds, by span id: the virtual time each began (only summed, never iterated).
    private readonly Dictionary<long, ulong> _open = [];
    private long _cpuFaults;
    private long _callbacks;
    private ulong _computeNs;
    private ulong _faultNs;
    private ulong _transferNs;

    /// <summary>handle_mm_fault calls (mm.fault): CPU faults and those hmm_range_fault takes for devices.</summary>
    public long CpuFaults => Interlocked.Read(ref _cpuFaults);

    /// <summary>Interval-notifier invalidate callbacks delivered (mmu_notifier.callback).</summary>
    public long Callbacks => Interlocked.Read(ref _callbacks);

    /// <summary>Virtual time inside GPU kernel spans (summed over kernels; concurrent kernels add up).</summary>
    public ulong ComputeNs { get { lock (_lock) return _computeNs; } }

    /// <summary>Virtual time inside GPU fault-batch spans.</summary>
    public ulong FaultNs { get { lock (_lock) return _faultNs; } }

    /// <summary>Virtual time inside DMA transfer spans.</summary>
    public ulong TransferNs { get { lock (_lock) return _transferNs; } }

    /// <inheritdoc />
    public void OnEvent(in TraceEvent traceEvent)
    {
        var t = traceEvent.Type;
        if (t.Category == "mm" && t.Name == "fault")
            Interlocked.Increment(ref _cpuFaults);
        else if (t.Category == "mmu_notifier" && t.Name == "callback")
            Interlocked.Increment(ref _callbacks);
        else if (t.Phase is not (TraceEventPhase.Instant or TraceEventPhase.Counter) && Kind(t) is { } kind)
            OnSpanEdge(traceEvent, kind);
    }

    private static int? Kind(TraceEventType t) => (t.Category, t.Name) switch
    {
        ("gpu", "kernel") => 0,
        ("gpu", "fault_batch") => 1,
        ("dma", "transfer") => 2,
        _ => null,
    };

    private void OnSpanEdge(in TraceEvent e, int kind)
    {
        lock (_lock)
        {
            if (e.Type.Phase is TraceEventPhase.Begin or TraceEventPhase.AsyncBegin)
            {
                _open[e.Span] = e.Time;
                return;
            }
            if (!_open.Remove(e.Span, out ulong began) || e.Time < began)
                return; // an end without its begin (attached mid-span), or threaded clocks out of order: not counted
            ulong ns = e.Time - began;
            switch (kind)
            {
                case 0: _computeNs += ns; break;
                case 1: _faultNs += ns; break;
                default: _transferNs += ns; break;
            }
        }
    }
}
