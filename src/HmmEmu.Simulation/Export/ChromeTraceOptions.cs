namespace HmmEmu.Simulation.Export;

/// <summary>What a <see cref="ChromeTraceWriter"/> writes besides spans and counters, and how it groups tracks.</summary>
public sealed record ChromeTraceOptions
{
    /// <summary>The defaults: instants on, at most 200 000 of them.</summary>
    public static ChromeTraceOptions Default { get; } = new();

    /// <summary>Whether the trace's point events (faults, interrupts, scheduler switches...) are written as "i" events.</summary>
    public bool IncludeInstants { get; init; } = true;

    /// <summary>At most this many instants are written; later ones are counted in <see cref="ChromeTraceWriter.InstantsDropped"/>.</summary>
    public long MaxInstants { get; init; } = 200_000;

    /// <summary>
    /// Names the "process" (group of tracks) a simulated thread is shown in; null for the default:
    /// kernel threads in "host", a simulated process's threads in "user NAME[PID]", device engines grouped by
    /// device ("gpu", "rnic0", "rnic1", "rnic link").
    /// </summary>
    public Func<SimThreadInfo, string>? ProcessOf { get; init; }
}
