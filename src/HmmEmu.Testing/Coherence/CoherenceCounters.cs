using HmmEmu.Simulation;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// Counts that show each invariant's precondition actually happened in a run ("a device fault raced an
/// invalidation", "fork with device mappings present"): an invariant whose antecedent never fires is not being
/// tested. Fed by the kernel's trace events and by the harness. Ordered by name, so reports are stable.
/// </summary>
public sealed class CoherenceCounters : ITraceListener
{
    private readonly SortedDictionary<string, long> _counts = new(StringComparer.Ordinal);
    private readonly Dictionary<ulong, string?> _byType = [];   // lookup only; never iterated

    /// <summary>Steps run.</summary>
    public const string Steps = "steps";

    /// <summary>Concurrent pairs run.</summary>
    public const string ConcurrentPairs = "concurrent pairs";

    /// <summary>A device command ran concurrently with an invalidating command on overlapping pages.</summary>
    public const string DeviceRacedInvalidation = "device op raced an invalidating op (same pages)";

    /// <summary>mmu_interval_read_retry found a collision (a fault raced an invalidation and retried).</summary>
    public const string ReadRetryCollisions = "read_retry collisions";

    /// <summary>Notifier callbacks delivered.</summary>
    public const string Callbacks = "invalidate callbacks";

    /// <summary>Non-blockable invalidations a callback refused.</summary>
    public const string Refusals = "non-blockable invalidations refused";

    /// <summary>Fork while the parent had device translations.</summary>
    public const string ForkWithDeviceMappings = "fork with device mappings present";

    /// <summary>Migrations set up.</summary>
    public const string Migrations = "migrations set up";

    /// <summary>OOM reaps the victim's driver refused (EAGAIN).</summary>
    public const string OomReapsRefused = "OOM reaps refused (EAGAIN)";

    /// <summary>Device translations checked against the CPU page tables (INV-1).</summary>
    public const string TranslationsChecked = "device translations checked";

    /// <summary>Device resets run (each aborts the device's work in flight).</summary>
    public const string DeviceResets = "device resets";

    /// <summary>The counts, by name.</summary>
    public IReadOnlyDictionary<string, long> Counts => _counts;

    /// <summary>Adds <paramref name="n"/> to counter <paramref name="name"/>.</summary>
    public void Add(string name, long n = 1)
    {
        _counts.TryGetValue(name, out long v);
        _counts[name] = v + n;
    }

    /// <summary>A counter's value (0 if it never fired).</summary>
    public long this[string name] => _counts.TryGetValue(name, out long v) ? v : 0;

    /// <summary>Adds every count of <paramref name="other"/> to this one.</summary>
    public void Merge(CoherenceCounters other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var (k, v) in other._counts)
            Add(k, v);
    }

    /// <inheritdoc />
    public void OnEvent(in TraceEvent traceEvent)
    {
        if (!_byType.TryGetValue(traceEvent.Type.Id, out var name))
        {
            name = (traceEvent.Type.Category, traceEvent.Type.Name) switch
            {
                ("mmu_notifier", "read_retry") => ReadRetryCollisions,
                ("mmu_notifier", "callback") => Callbacks,
                ("migrate", "setup") => Migrations,
                _ => null,
            };
            _byType[traceEvent.Type.Id] = name;
        }
        if (name is null)
            return;
        Add(name);
        if (ReferenceEquals(name, Callbacks) && traceEvent.C == 0)
            Add(Refusals);
    }

    /// <inheritdoc />
    public override string ToString() => string.Join(", ", _counts.Select(kv => $"{kv.Key}: {kv.Value}"));
}
