using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace HmmEmu.Simulation.Export;

/// <summary>
/// Streams a simulation's trace as Chrome/Perfetto trace-event JSON (the JSON Object Format, opened by
/// ui.perfetto.dev and chrome://tracing) on the virtual timeline: one track per simulated thread, grouped into
/// "processes" (host, user processes, one per device); spans as "B"/"E" slices (cross-thread spans as "b"/"e" async
/// slices); counters as "C" in the process named after their category; point events as "i". Timestamps are virtual
/// nanoseconds written as microseconds with three decimals. The writer listens to one scheduler at a time
/// (<see cref="Attach"/>, <see cref="Detach"/>); runs on fresh schedulers one after another (a selftest per machine)
/// follow each other on one timeline, each in processes labelled with its name. <see cref="Dispose"/> detaches,
/// closes spans still open and completes the JSON. In deterministic mode the same seeds write the same bytes.
/// </summary>
/// <remarks>Thread-safe: events from several simulated threads (threaded mode) are serialised by one lock.</remarks>
public sealed class ChromeTraceWriter : ITraceListener, IDisposable
{
    private const int FlushThreshold = 1 << 15;
    private const string HostProcess = "host";

    private const ulong SessionGapNs = 1000;

    private readonly Lock _lock = new();
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly ChromeTraceOptions _options;
    private readonly Utf8JsonWriter _json;
    private readonly Dictionary<string, int> _pids = new(StringComparer.Ordinal);
    private readonly Dictionary<int, int> _pidOfThread = [];
    private readonly Dictionary<long, OpenSpan> _open = [];
    private Scheduler? _scheduler;
    private string? _label;
    private int _sessions;
    private ulong? _firstSeed;
    private SchedulerMode _firstMode;
    private ulong _offset;
    private ulong _lastTime;
    private long _written;
    private long _instants;
    private long _instantsDropped;
    private bool _disposed;

    private readonly record struct OpenSpan(long Order, int Pid, int Tid, TraceEventType Type);

    /// <summary>Starts the JSON on <paramref name="stream"/>; <see cref="Attach"/> a scheduler to record its events.</summary>
    public ChromeTraceWriter(Stream stream, ChromeTraceOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        _leaveOpen = leaveOpen;
        _options = options ?? ChromeTraceOptions.Default;
        // Relaxed escaping: argument names such as "mm<<8|event" stay readable (the file is never embedded in HTML).
        _json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        _json.WriteStartObject();
        _json.WriteString("displayTimeUnit", "ns");
        _json.WriteStartArray("traceEvents");
    }

    /// <summary>Starts the JSON on <paramref name="stream"/> and attaches <paramref name="scheduler"/> (see <see cref="Attach"/>).</summary>
    public ChromeTraceWriter(Scheduler scheduler, Stream stream, ChromeTraceOptions? options = null, bool leaveOpen = false)
        : this(stream, options, leaveOpen)
    {
        Attach(scheduler);
    }

    /// <summary>
    /// Starts recording <paramref name="scheduler"/>'s events. Its time 0 is placed just after the end of the previous
    /// attached run, and with a <paramref name="label"/> its process names are prefixed with it ("LABEL: host").
    /// Throws if a scheduler is attached already.
    /// </summary>
    public void Attach(Scheduler scheduler, string? label = null)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_scheduler is not null)
                throw new InvalidOperationException("This ChromeTraceWriter already records a scheduler; Detach it before attaching another.");
            _scheduler = scheduler;
            _label = label;
            _offset = _sessions == 0 ? 0 : _lastTime + SessionGapNs;
            _lastTime = _offset;
            _sessions++;
            _firstSeed ??= scheduler.Seed;
            if (_sessions == 1)
                _firstMode = scheduler.Mode;
            _pidOfThread.Clear();
            PidOf(label is null ? HostProcess : label + ": " + HostProcess);
            scheduler.Trace.AddListener(this);
        }
    }

    /// <summary>Stops recording the attached scheduler (if any) and ends its spans still open at the last time seen.</summary>
    public void Detach()
    {
        lock (_lock)
        {
            if (_scheduler is null)
                return;
            _scheduler.Trace.RemoveListener(this);
            _scheduler = null;
            if (_disposed)
                return;
            // Innermost (latest begun) first, so that B/E pairs stay nested.
            foreach (var (id, span) in _open.OrderByDescending(kv => kv.Value.Order))
                WriteEndOf(id, span, _lastTime, result: null);
            _open.Clear();
            _json.Flush();
        }
    }

    /// <summary>Events written so far (metadata included).</summary>
    public long EventsWritten
    {
        get { lock (_lock) return _written; }
    }

    /// <summary>Instants not written because <see cref="ChromeTraceOptions.MaxInstants"/> was reached.</summary>
    public long InstantsDropped
    {
        get { lock (_lock) return _instantsDropped; }
    }

    /// <inheritdoc />
    public void OnEvent(in TraceEvent traceEvent)
    {
        lock (_lock)
        {
            if (_disposed || _scheduler is null)
                return;
            if (_offset + traceEvent.Time > _lastTime)
                _lastTime = _offset + traceEvent.Time;
            var type = traceEvent.Type;
            switch (type.Phase)
            {
                case TraceEventPhase.Begin:
                case TraceEventPhase.AsyncBegin:
                    WriteBegin(traceEvent);
                    break;
                case TraceEventPhase.End:
                case TraceEventPhase.AsyncEnd:
                    WriteEnd(traceEvent);
                    break;
                case TraceEventPhase.Counter:
                    WriteCounter(traceEvent);
                    break;
                default:
                    WriteInstant(traceEvent);
                    break;
            }
            if (_json.BytesPending > FlushThreshold)
                _json.Flush();
        }
    }

    /// <summary>Detaches, ends every span still open at the last time seen, and completes and flushes the JSON.</summary>
    public void Dispose()
    {
        Detach();
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            _json.WriteEndArray();
            _json.WriteStartObject("otherData");
            _json.WriteString("clock", "virtual (simulated) time; ts in microseconds");
            _json.WriteString("runs", _sessions.ToString(CultureInfo.InvariantCulture));
            if (_firstSeed is ulong seed)
            {
                _json.WriteString("seed", seed.ToString(CultureInfo.InvariantCulture));
                _json.WriteString("mode", _firstMode.ToString());
            }
            _json.WriteEndObject();
            _json.WriteEndObject();
            _json.Flush();
            _json.Dispose();
            _stream.Flush();
            if (!_leaveOpen)
                _stream.Dispose();
        }
    }

    // ---- events (caller holds _lock) ------------------------------------------------------------------------------

    private void WriteBegin(in TraceEvent e)
    {
        int pid = TrackOf(e.ThreadId);
        _open[e.Span] = new OpenSpan(e.Sequence, pid, e.ThreadId, e.Type);
        bool async = e.Type.Phase == TraceEventPhase.AsyncBegin;
        StartEvent(async ? "b" : "B", e.Type, _offset + e.Time, pid, e.ThreadId);
        if (async)
            _json.WriteString("id", SpanId(e.Span));
        WriteArgs(e);
        _json.WriteEndObject();
    }

    private void WriteEnd(in TraceEvent e)
    {
        // A span begun before the writer was attached (or ended twice) has no open begin here: skip it.
        if (_open.Remove(e.Span, out var span))
            WriteEndOf(e.Span, span, _offset + e.Time, e.A);
    }

    private void WriteEndOf(long id, in OpenSpan span, ulong time, ulong? result)
    {
        bool async = span.Type.Phase == TraceEventPhase.AsyncBegin;
        StartEvent(async ? "e" : "E", span.Type, time, span.Pid, span.Tid);
        if (async)
            _json.WriteString("id", SpanId(id));
        _json.WriteStartObject("args");
        if (result is ulong r)
            _json.WriteString("result", Hex(r));
        else
            _json.WriteBoolean("unfinished", true);
        _json.WriteEndObject();
        _json.WriteEndObject();
    }

    // A counter belongs to the process named after its category ("gpu.vram" to "gpu"), whichever thread sampled it,
    // so that each counter is one track.
    private void WriteCounter(in TraceEvent e)
    {
        int pid = PidOf(_label is null ? e.Type.Category : _label + ": " + e.Type.Category);
        StartEvent("C", e.Type, _offset + e.Time, pid, e.ThreadId);
        var names = e.Type.ArgNames;
        _json.WriteStartObject("args");
        if (names.Count > 0)
            _json.WriteNumber(names[0], e.A);
        if (names.Count > 1)
            _json.WriteNumber(names[1], e.B);
        if (names.Count > 2)
            _json.WriteNumber(names[2], e.C);
        _json.WriteEndObject();
        _json.WriteEndObject();
    }

    private void WriteInstant(in TraceEvent e)
    {
        if (!_options.IncludeInstants)
            return;
        if (_instants >= _options.MaxInstants)
        {
            _instantsDropped++;
            return;
        }
        _instants++;
        int pid = TrackOf(e.ThreadId);
        StartEvent("i", e.Type, _offset + e.Time, pid, e.ThreadId);
        _json.WriteString("s", "t");
        WriteArgs(e);
        _json.WriteEndObject();
    }

    private void StartEvent(string phase, TraceEventType type, ulong time, int pid, int tid)
    {
        _json.WriteStartObject();
        _json.WriteString("ph", phase);
        _json.WriteString("cat", type.Category);
        _json.WriteString("name", type.ToString());
        WriteTimestamp(time);
        _json.WriteNumber("pid", pid);
        _json.WriteNumber("tid", tid);
        _written++;
    }

    private void WriteArgs(in TraceEvent e)
    {
        var names = e.Type.ArgNames;
        if (names.Count == 0)
            return;
        _json.WriteStartObject("args");
        _json.WriteString(names[0], Hex(e.A));
        if (names.Count > 1)
            _json.WriteString(names[1], Hex(e.B));
        if (names.Count > 2)
            _json.WriteString(names[2], Hex(e.C));
        _json.WriteEndObject();
    }

    // Virtual nanoseconds as microseconds with the nanoseconds as an exact decimal fraction.
    private void WriteTimestamp(ulong absoluteNs) => _json.WriteNumber("ts", (decimal)absoluteNs / 1000m);

    private static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    // Unique across attached runs, whose span ids all start at 1.
    private string SpanId(long id) => "0x" + (((ulong)_sessions << 40) | (ulong)id).ToString("x", CultureInfo.InvariantCulture);

    // ---- tracks ---------------------------------------------------------------------------------------------------

    // The pid of the thread's group; names the thread (and its group, the first time) with metadata events.
    private int TrackOf(int tid)
    {
        if (_pidOfThread.TryGetValue(tid, out int pid))
            return pid;
        string process, name;
        if (tid != 0 && _scheduler!.TryGetThreadInfo(tid, out var info))
        {
            process = _options.ProcessOf?.Invoke(info) ?? DefaultProcessOf(info);
            name = info.Name;
        }
        else
        {
            process = HostProcess;
            name = tid == 0 ? "outside simulated threads" : "T" + tid.ToString(CultureInfo.InvariantCulture);
        }
        pid = PidOf(_label is null ? process : _label + ": " + process);
        _pidOfThread[tid] = pid;
        WriteMetadata("thread_name", pid, tid, name);
        WriteSortIndex("thread_sort_index", pid, tid, tid);
        return pid;
    }

    private int PidOf(string process)
    {
        if (_pids.TryGetValue(process, out int pid))
            return pid;
        pid = _pids.Count + 1;
        _pids[process] = pid;
        WriteMetadata("process_name", pid, 0, process);
        WriteSortIndex("process_sort_index", pid, 0, pid);
        return pid;
    }

    private void WriteMetadata(string kind, int pid, int tid, string name)
    {
        _json.WriteStartObject();
        _json.WriteString("ph", "M");
        _json.WriteString("name", kind);
        _json.WriteNumber("ts", 0);
        _json.WriteNumber("pid", pid);
        _json.WriteNumber("tid", tid);
        _json.WriteStartObject("args");
        _json.WriteString("name", name);
        _json.WriteEndObject();
        _json.WriteEndObject();
        _written++;
    }

    private void WriteSortIndex(string kind, int pid, int tid, int index)
    {
        _json.WriteStartObject();
        _json.WriteString("ph", "M");
        _json.WriteString("name", kind);
        _json.WriteNumber("ts", 0);
        _json.WriteNumber("pid", pid);
        _json.WriteNumber("tid", tid);
        _json.WriteStartObject("args");
        _json.WriteNumber("sort_index", index);
        _json.WriteEndObject();
        _json.WriteEndObject();
        _written++;
    }

    /// <summary>
    /// The default grouping: kernel threads (and code outside simulated threads) in "host"; a simulated process's
    /// threads ("NAME[PID]/thread") in "user NAME[PID]", other user threads in "host"; device engines by device:
    /// the first word of the engine's name without a "dma " prefix, cut at '.', e.g. "gpu compute" and "dma gpu.ce"
    /// in "gpu", "rnic0 requester" in "rnic0", "rnic link 0->1" in "rnic link".
    /// </summary>
    public static string DefaultProcessOf(SimThreadInfo thread)
    {
        string name = thread.Name;
        switch (thread.Kind)
        {
            case SimThreadKind.Device:
                if (name.StartsWith("dma ", StringComparison.Ordinal))
                    name = name[4..];
                if (name.Contains(" link", StringComparison.Ordinal))
                    return name[..name.IndexOf(" link", StringComparison.Ordinal)] + " link";
                int cut = name.IndexOfAny([' ', '.']);
                return cut > 0 ? name[..cut] : name;
            case SimThreadKind.User:
                int slash = name.IndexOf('/', StringComparison.Ordinal);
                return slash > 0 ? "user " + name[..slash] : HostProcess;
            default:
                return HostProcess;
        }
    }
}
