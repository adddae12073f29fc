using System.Text.Json;

namespace HmmEmu.Simulation.Tests;

/// <summary>
/// Checks the structure of a Chrome/Perfetto trace-event JSON file as HmmEmu writes it, and summarises it. Shared
/// (linked) with the device test projects that trace a workload.
/// </summary>
internal static class ChromeTraceAssert
{
    /// <summary>What a valid trace holds: slice counts by name (B and b), counter samples by name, instants.</summary>
    internal sealed record Summary(Dictionary<string, int> Slices, Dictionary<string, int> Counters, int Instants, int Events);

    /// <summary>
    /// Parses <paramref name="json"/> and asserts: a traceEvents array and displayTimeUnit "ns"; every event has
    /// ph, ts, pid, tid; a process_name for every pid and a thread_name for every (pid, tid) used by a slice or an
    /// instant; B/E balanced and nested per track (same name); every async b has exactly one e with the same id and
    /// name; X has dur >= 0; counter values are numbers; timestamps non-decreasing per track (and per counter) in file
    /// order.
    /// </summary>
    public static Summary Valid(byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        Assert.Equal("ns", root.GetProperty("displayTimeUnit").GetString());
        var events = root.GetProperty("traceEvents");
        Assert.Equal(JsonValueKind.Array, events.ValueKind);

        var processNames = new HashSet<long>();
        var threadNames = new HashSet<(long, long)>();
        var usedPids = new HashSet<long>();
        var usedTracks = new HashSet<(long, long)>();
        var stacks = new Dictionary<(long, long), Stack<string>>();
        var lastTs = new Dictionary<(long, long), decimal>();
        var lastCounterTs = new Dictionary<(long, string), decimal>();
        var asyncOpen = new Dictionary<string, string>();
        var asyncClosed = new HashSet<string>();
        var slices = new Dictionary<string, int>(StringComparer.Ordinal);
        var counters = new Dictionary<string, int>(StringComparer.Ordinal);
        int instants = 0, count = 0;
        foreach (var e in events.EnumerateArray())
        {
            count++;
            string ph = e.GetProperty("ph").GetString()!;
            decimal ts = e.GetProperty("ts").GetDecimal();
            long pid = e.GetProperty("pid").GetInt64();
            long tid = e.GetProperty("tid").GetInt64();
            string name = e.GetProperty("name").GetString()!;
            Assert.True(ts >= 0, $"event #{count} has a negative ts");
            if (ph == "M")
            {
                if (name == "process_name")
                    processNames.Add(pid);
                else if (name == "thread_name")
                    threadNames.Add((pid, tid));
                continue;
            }
            usedPids.Add(pid);
            if (ph == "C")
            {
                // Counters are process-scoped: one track per (pid, name); tid only says who sampled.
                Assert.Equal(JsonValueKind.Object, e.GetProperty("args").ValueKind);
                foreach (var series in e.GetProperty("args").EnumerateObject())
                    Assert.Equal(JsonValueKind.Number, series.Value.ValueKind);
                var counter = (pid, name);
                if (lastCounterTs.TryGetValue(counter, out decimal previous))
                    Assert.True(ts >= previous, $"counter {name} of pid {pid} goes back in time at event #{count}");
                lastCounterTs[counter] = ts;
                counters[name] = counters.GetValueOrDefault(name) + 1;
                continue;
            }
            var track = (pid, tid);
            usedTracks.Add(track);
            if (lastTs.TryGetValue(track, out decimal before))
                Assert.True(ts >= before, $"event #{count} ({ph} {name}) at {ts} goes back in time on track {track} (last {before})");
            lastTs[track] = ts;
            switch (ph)
            {
                case "B":
                    Stack(stacks, track).Push(name);
                    slices[name] = slices.GetValueOrDefault(name) + 1;
                    break;
                case "E":
                    var stack = Stack(stacks, track);
                    Assert.True(stack.Count > 0, $"event #{count}: E {name} on track {track} without an open B");
                    Assert.Equal(stack.Pop(), name);
                    break;
                case "b":
                    string id = e.GetProperty("id").GetString()!;
                    Assert.True(asyncOpen.TryAdd(id, name) && !asyncClosed.Contains(id), $"async id {id} begun twice");
                    slices[name] = slices.GetValueOrDefault(name) + 1;
                    break;
                case "e":
                    string eid = e.GetProperty("id").GetString()!;
                    Assert.True(asyncOpen.Remove(eid, out string? bname), $"event #{count}: e {name} id {eid} without its b");
                    Assert.Equal(bname, name);
                    asyncClosed.Add(eid);
                    break;
                case "X":
                    Assert.True(e.GetProperty("dur").GetDecimal() >= 0, $"event #{count}: X {name} with a negative dur");
                    slices[name] = slices.GetValueOrDefault(name) + 1;
                    break;
                case "i":
                    instants++;
                    break;
                default:
                    Assert.Fail($"event #{count} has an unexpected phase '{ph}'");
                    break;
            }
        }
        foreach (var (track, stack) in stacks)
            Assert.True(stack.Count == 0, $"track {track} ends with {stack.Count} open B slice(s): {string.Join(", ", stack)}");
        Assert.True(asyncOpen.Count == 0, $"{asyncOpen.Count} async slice(s) never ended");
        foreach (long pid in usedPids)
            Assert.True(processNames.Contains(pid), $"pid {pid} has no process_name metadata");
        foreach (var track in usedTracks)
            Assert.True(threadNames.Contains(track), $"track {track} has no thread_name metadata");
        return new Summary(slices, counters, instants, count);
    }

    private static Stack<string> Stack(Dictionary<(long, long), Stack<string>> stacks, (long, long) track)
    {
        if (!stacks.TryGetValue(track, out var s))
            stacks[track] = s = new Stack<string>();
        return s;
    }
}
