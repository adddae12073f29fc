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
}
