using System.Text;
using System.Text.Json;
using HmmEmu.Simulation.Export;

namespace HmmEmu.Simulation.Tests;

public sealed class ChromeTraceWriterTests
{
    private static readonly TraceSpanType s_outer = new("test", "outer", crossThread: false, "n");
    private static readonly TraceSpanType s_inner = new("test", "inner", crossThread: false);
    private static readonly TraceSpanType s_job = new("test", "job", crossThread: true, "job");
    private static readonly TraceEventType s_point = new("test", "point", "value");
    private static readonly TraceEventType s_level = TraceEventType.Counter("test", "level", "items");

    // A user thread posts jobs (cross-thread spans) to two device workers that end them, with nested spans, counters
    // and instants on every thread, yielding so that the seed picks the interleaving.
    private static void Workload(Scheduler s)
    {
        var jobs = new Queue<TraceSpan>();
        var queue = new SimWaitQueue(s, "jobs");
        int done = 0;
        s.Run(() =>
        {
            var workers = new List<SimThread>();
            for (int w = 0; w < 2; w++)
            {
                workers.Add(s.Spawn($"dev{w} engine", () =>
                {
                    for (int i = 0; i < 3; i++)
                    {
                        TraceSpan job = default;
                        queue.WaitUntil(jobs, q => q.Count > 0);
                        job = jobs.Dequeue();
                        using (s.Trace.Begin(s_outer, (ulong)i))
                        {
                            s.Charge(150);
                            using (s.Trace.Begin(s_inner))
                                s.Charge(40);
                            s.Trace.Record(s_point, (ulong)i);
                        }
                        job.End((ulong)i);
                        s.Trace.Record(s_level, (ulong)Interlocked.Increment(ref done));
                        s.Yield();
                    }
                }, SimThreadKind.Device));
            }
            for (int j = 0; j < 6; j++)
            {
                jobs.Enqueue(s.Trace.Begin(s_job, (ulong)j));
                queue.WakeAll();
                s.Charge(30);
                s.Yield();
            }
            foreach (var t in workers)
                t.Join();
        });
    }

    private static byte[] TraceOf(ulong seed, ChromeTraceOptions? options = null)
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = seed });
        using var buffer = new MemoryStream();
        using (new ChromeTraceWriter(s, buffer, options, leaveOpen: true))
            Workload(s);
        return buffer.ToArray();
    }

    [Fact]
    public void Writer_SpansCountersInstants_WritesValidTraceEventJson()
    {
        var summary = ChromeTraceAssert.Valid(TraceOf(seed: 3));

        Assert.Equal(6, summary.Slices["test.outer"]);
        Assert.Equal(6, summary.Slices["test.inner"]);
        Assert.Equal(6, summary.Slices["test.job"]);
        Assert.Equal(6, summary.Counters["test.level"]);
        Assert.True(summary.Instants >= 6);
    }

    [Fact]
    public void Writer_SameSeedTwice_ByteIdenticalFiles()
    {
        Assert.Equal(TraceOf(seed: 5), TraceOf(seed: 5));
    }

    [Fact]
    public void Writer_Tracks_NamedAfterThreadsAndGroupedByKind()
    {
        using var doc = JsonDocument.Parse(TraceOf(seed: 1));
        var names = doc.RootElement.GetProperty("traceEvents").EnumerateArray()
            .Where(e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() is "process_name" or "thread_name")
            .Select(e => e.GetProperty("args").GetProperty("name").GetString())
            .ToHashSet();

        Assert.Contains("host", names);
        Assert.Contains("dev0", names);
        Assert.Contains("dev1", names);
        Assert.Contains("main", names);
        Assert.Contains("dev0 engine", names);
    }

    [Fact]
    public void Writer_Timestamps_AreVirtualMicrosecondsWithNanosecondFraction()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });
        using var buffer = new MemoryStream();
        using (new ChromeTraceWriter(s, buffer, leaveOpen: true))
        {
            s.Run(() =>
            {
                s.Charge(1_234_567);
                s.Trace.Record(s_point, 1);
            });
        }
        string json = Encoding.UTF8.GetString(buffer.ToArray());

        Assert.Contains("\"ts\":1234.567", json, StringComparison.Ordinal);
    }

    [Fact]
    public void Writer_MaxInstantsReached_DropsAndCountsTheRest()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });
        using var buffer = new MemoryStream();
        var writer = new ChromeTraceWriter(s, buffer, new ChromeTraceOptions { MaxInstants = 2 }, leaveOpen: true);
        for (int i = 0; i < 5; i++)
            s.Trace.Record(s_point, (ulong)i);
        writer.Dispose();

        Assert.Equal(3, writer.InstantsDropped);
        Assert.Equal(2, ChromeTraceAssert.Valid(buffer.ToArray()).Instants);
    }

    [Fact]
    public void Writer_SpanOpenAtDispose_IsClosedAsUnfinished()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });
        using var buffer = new MemoryStream();
        using (new ChromeTraceWriter(s, buffer, leaveOpen: true))
        {
            s.Trace.Begin(s_outer, 1);
            s.Trace.Begin(s_inner);
            s.Trace.Begin(s_job, 7);
        }
        var summary = ChromeTraceAssert.Valid(buffer.ToArray());

        Assert.Equal(1, summary.Slices["test.outer"]);
        Assert.Contains("\"unfinished\":true", Encoding.UTF8.GetString(buffer.ToArray()), StringComparison.Ordinal);
    }

    [Fact]
    public void Writer_TwoRunsAttachedInTurn_SecondFollowsFirstUnderItsLabel()
    {
        using var buffer = new MemoryStream();
        using (var writer = new ChromeTraceWriter(buffer, leaveOpen: true))
        {
            foreach (string label in new[] { "first", "second" })
            {
                using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });
                writer.Attach(s, label);
                Workload(s);
                writer.Detach();
            }
        }
        var json = buffer.ToArray();
        ChromeTraceAssert.Valid(json);
        using var doc = JsonDocument.Parse(json);
        var events = doc.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
        var pidOf = events.Where(e => e.GetProperty("name").GetString() == "process_name")
            .ToDictionary(e => e.GetProperty("args").GetProperty("name").GetString()!, e => e.GetProperty("pid").GetInt64());
        decimal LastTs(long pid) => events.Where(e => e.GetProperty("pid").GetInt64() == pid && e.GetProperty("ph").GetString() != "M").Max(e => e.GetProperty("ts").GetDecimal());
        decimal FirstTs(long pid) => events.Where(e => e.GetProperty("pid").GetInt64() == pid && e.GetProperty("ph").GetString() != "M").Min(e => e.GetProperty("ts").GetDecimal());

        Assert.Contains("first: dev0", pidOf.Keys);
        Assert.Contains("second: dev0", pidOf.Keys);
        Assert.True(FirstTs(pidOf["second: host"]) > LastTs(pidOf["first: host"]));
    }

    [Theory]
    [InlineData("gpu compute", SimThreadKind.Device, "gpu")]
    [InlineData("dma gpu.ce", SimThreadKind.Device, "gpu")]
    [InlineData("rnic1 requester", SimThreadKind.Device, "rnic1")]
    [InlineData("rnic link 0->1", SimThreadKind.Device, "rnic link")]
    [InlineData("kworker/gpu-fault:0", SimThreadKind.Kernel, "host")]
    [InlineData("app[3]/main", SimThreadKind.User, "user app[3]")]
    [InlineData("main", SimThreadKind.User, "host")]
    public void DefaultProcessOf_GroupsThreadsByDevice(string name, SimThreadKind kind, string expected)
    {
        Assert.Equal(expected, ChromeTraceWriter.DefaultProcessOf(new SimThreadInfo(1, name, kind)));
    }
}
