namespace HmmEmu.Simulation.Export;

/// <summary>Entry point for writing a run's trace as Chrome/Perfetto trace-event JSON on the virtual timeline.</summary>
public static class ChromeTrace
{
    /// <summary>
    /// Creates <paramref name="path"/> and streams every later event of <paramref name="scheduler"/>'s trace into it
    /// until the returned writer is disposed: <c>using var trace = ChromeTrace.Open(path, scheduler);</c>.
    /// </summary>
    public static ChromeTraceWriter Open(string path, Scheduler scheduler, ChromeTraceOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(scheduler);
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 1 << 16);
        try
        {
            return new ChromeTraceWriter(scheduler, stream, options, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates <paramref name="path"/> for several runs in sequence: <see cref="ChromeTraceWriter.Attach"/> each run's
    /// scheduler (with a label) and <see cref="ChromeTraceWriter.Detach"/> it when the run ends.
    /// </summary>
    public static ChromeTraceWriter Create(string path, ChromeTraceOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new ChromeTraceWriter(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 1 << 16), options, leaveOpen: false);
    }
}
