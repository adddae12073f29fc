using System.Globalization;
using System.Text;

namespace HmmEmu.Simulation;

/// <summary>
/// A script for the deterministic scheduler's choices, used instead of the seed's decision stream: the decisions to
/// take at the run's multi-way choice points, by index. Decision 0 keeps the current thread running if it can run,
/// else picks the runnable thread with the lowest id; decision d &gt; 0 switches to the d-th other runnable thread
/// (by id; the d+1-th when the current thread cannot run). Unlisted or out-of-range decisions are 0, so the
/// empty script is the run with no preemption at all, and each listed decision is one forced switch. Recorded logs
/// (<see cref="Scheduler.Decisions"/>) turn into scripts that replay a seeded run exactly, and a failing script
/// shrinks by dropping entries.
/// </summary>
public sealed class ScheduleScript
{
    private readonly SortedDictionary<int, int> _forced = [];

    /// <summary>The script with no forced decision.</summary>
    public static ScheduleScript Empty { get; } = new([]);

    /// <summary>A script of <paramref name="forced"/> (decision index, decision) pairs; zero decisions are dropped.</summary>
    public ScheduleScript(IEnumerable<KeyValuePair<int, int>> forced)
    {
        ArgumentNullException.ThrowIfNull(forced);
        foreach (var (index, decision) in forced)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfNegative(decision);
            if (decision != 0)
                _forced[index] = decision;
        }
    }

    /// <summary>The script that replays a recorded decision log.</summary>
    public static ScheduleScript FromLog(IReadOnlyList<int> decisions)
    {
        ArgumentNullException.ThrowIfNull(decisions);
        return new ScheduleScript(decisions.Select((d, i) => new KeyValuePair<int, int>(i, d)));
    }

    /// <summary>The forced (non-zero) decisions, by index, in index order.</summary>
    public IReadOnlyDictionary<int, int> Forced => _forced;

    /// <summary>How many decisions are forced.</summary>
    public int Count => _forced.Count;

    /// <summary>The decision at choice point <paramref name="index"/>.</summary>
    public int this[int index] => _forced.TryGetValue(index, out int d) ? d : 0;

    /// <summary>This script with the decisions at <paramref name="indices"/> back to 0.</summary>
    public ScheduleScript Without(IEnumerable<int> indices)
    {
        var drop = new HashSet<int>(indices);   // membership only
        return new ScheduleScript(_forced.Where(kv => !drop.Contains(kv.Key)));
    }

    /// <summary>Parses the <see cref="ToString"/> form: <c>index:decision</c> pairs separated by commas, or <c>none</c>.</summary>
    public static ScheduleScript Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Trim() is "" or "none")
            return Empty;
        var pairs = new List<KeyValuePair<int, int>>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var halves = part.Split(':');
            if (halves.Length != 2
                || !int.TryParse(halves[0], NumberStyles.None, CultureInfo.InvariantCulture, out int index)
                || !int.TryParse(halves[1], NumberStyles.None, CultureInfo.InvariantCulture, out int decision))
            {
                throw new FormatException($"'{part}' is not a schedule entry: write index:decision, e.g. \"12:2,40:1\".");
            }
            pairs.Add(new(index, decision));
        }
        return new ScheduleScript(pairs);
    }

    /// <inheritdoc />
    public override string ToString()
    {
        if (_forced.Count == 0)
            return "none";
        var sb = new StringBuilder();
        foreach (var (index, decision) in _forced)
        {
            if (sb.Length > 0)
                sb.Append(',');
            sb.Append(index.ToString(CultureInfo.InvariantCulture)).Append(':').Append(decision.ToString(CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
