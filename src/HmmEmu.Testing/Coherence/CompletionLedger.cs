namespace HmmEmu.Testing.Coherence;

/// <summary>
/// INV-12 bookkeeping for a target whose device reports each finished work request with a completion (a CQE, a
/// fence write, an interrupt record): the adapter counts what it posts and notes any completion that names the wrong
/// request; at quiescence, <see cref="Problems"/> compares the count with the completions the device wrote. Every
/// posted request must have completed exactly once, successfully or with an error; none may complete unasked.
/// </summary>
/// <param name="device">The device's name in the problems reported.</param>
public sealed class CompletionLedger(string device)
{
    private readonly List<string> _noted = [];
    private long _posted;

    /// <summary>Work requests posted so far.</summary>
    public long PostedCount => Interlocked.Read(ref _posted);

    /// <summary>Counts <paramref name="count"/> work requests handed to the device.</summary>
    public void Posted(long count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Interlocked.Add(ref _posted, count);
    }

    /// <summary>Records a completion that broke the rule (for example one naming another request); reported once.</summary>
    public void Note(string problem)
    {
        ArgumentException.ThrowIfNullOrEmpty(problem);
        lock (_noted)
            _noted.Add($"INV-12 (honest status): {device}: {problem}");
    }

    /// <summary>
    /// The rule's violations at quiescence, given how many completions the device has written in all: the noted
    /// problems (then forgotten), and a mismatch between requests posted and completions written.
    /// </summary>
    public IReadOnlyList<string> Problems(long completionsWritten)
    {
        var problems = new List<string>();
        lock (_noted)
        {
            problems.AddRange(_noted);
            _noted.Clear();
        }
        long posted = PostedCount;
        if (completionsWritten != posted)
        {
            problems.Add(completionsWritten < posted
                ? $"INV-12 (exactly once): {device} wrote {completionsWritten} completion(s) for {posted} work request(s) posted: {posted - completionsWritten} never finished"
                : $"INV-12 (exactly once): {device} wrote {completionsWritten} completion(s) for {posted} work request(s) posted: {completionsWritten - posted} completion(s) nobody asked for");
        }
        return problems;
    }
}
