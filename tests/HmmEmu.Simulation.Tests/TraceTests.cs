namespace HmmEmu.Simulation.Tests;

public sealed class TraceTests
{
    private static readonly TraceEventType s_testEvent = new("test", "event", "a", "b");

    private sealed class CountingListener : ITraceListener
    {
        public int Count { get; private set; }

        public void OnEvent(in TraceEvent traceEvent)
        {
            if (ReferenceEquals(traceEvent.Type, s_testEvent))
                Count++;
        }
    }

    private static ulong HashOf(params ulong[] args)
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });
        foreach (ulong a in args)
            s.Trace.Record(s_testEvent, a);
        return s.Trace.Hash;
    }

    [Fact]
    public void Hash_SameEvents_SameHash()
    {
        Assert.Equal(HashOf(1, 2, 3), HashOf(1, 2, 3));
    }

    [Fact]
    public void Hash_DifferentArgument_DifferentHash()
    {
        Assert.NotEqual(HashOf(1, 2, 3), HashOf(1, 2, 4));
    }

    [Fact]
    public void Hash_SameEventsInOtherOrder_DifferentHash()
    {
        Assert.NotEqual(HashOf(1, 2, 3), HashOf(3, 2, 1));
    }

    [Fact]
    public void Snapshot_RetainEventsOn_ReturnsEventsInOrder()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });
        s.Trace.RetainEvents = true;

        s.Trace.Record(s_testEvent, 10, 20);
        s.Trace.Record(s_testEvent, 30, 40);

        var events = s.Trace.Snapshot();
        Assert.Equal([(0L, 10UL, 20UL), (1L, 30UL, 40UL)], events.Select(e => (e.Sequence, e.A, e.B)));
    }

    [Fact]
    public void Snapshot_RetainEventsOff_IsEmpty()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });

        s.Trace.Record(s_testEvent, 10, 20);

        Assert.Empty(s.Trace.Snapshot());
    }

    [Fact]
    public void AddListener_EventsRecorded_ListenerSeesEach()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });
        var listener = new CountingListener();
        s.Trace.AddListener(listener);

        s.Trace.Record(s_testEvent);
        s.Trace.Record(s_testEvent);

        Assert.Equal(2, listener.Count);
    }

    [Fact]
    public void RemoveListener_AfterRemoval_ListenerSeesNothing()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });
        var listener = new CountingListener();
        s.Trace.AddListener(listener);
        s.Trace.RemoveListener(listener);

        s.Trace.Record(s_testEvent);

        Assert.Equal(0, listener.Count);
    }

    [Fact]
    public void TraceEventType_MoreThanThreeArguments_ThrowsArgumentException()
    {
        Assert.Throws<ArgumentException>(() => new TraceEventType("test", "wide", "a", "b", "c", "d"));
    }

    [Fact]
    public void StableHash_OfEmptyString_IsOffsetBasis()
    {
        Assert.Equal(StableHash.Empty, StableHash.Of(""));
    }

    private static readonly TraceSpanType s_span = new("test", "span", crossThread: false, "x");

    [Fact]
    public void Begin_ThenEnd_RecordsTwoEventsSharingTheSpanId()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });
        s.Trace.RetainEvents = true;

        var span = s.Trace.Begin(s_span, 5);
        span.End(9);

        var events = s.Trace.Snapshot();
        Assert.Equal([TraceEventPhase.Begin, TraceEventPhase.End], events.Select(e => e.Type.Phase));
        Assert.Equal(span.Id, events[0].Span);
        Assert.Equal(span.Id, events[1].Span);
        Assert.Equal((5UL, 9UL), (events[0].A, events[1].A));
    }

    [Fact]
    public void Hash_SpanEndedWithOtherResult_DifferentHash()
    {
        static ulong Run(ulong result)
        {
            using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });
            s.Trace.Begin(s_span, 5).End(result);
            return s.Trace.Hash;
        }

        Assert.Equal(Run(1), Run(1));
        Assert.NotEqual(Run(1), Run(2));
    }

    [Fact]
    public void Record_OneEndOfASpan_Throws()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });

        var e = Assert.Throws<ArgumentException>(() => s.Trace.Record(s_span.Begin));
        Assert.Contains("Trace.Begin", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EndOfDefaultSpan_RecordsNothing()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });

        default(TraceSpan).End();

        Assert.Equal(0, s.Trace.Count);
    }
}
