using System.Diagnostics;
using System.Text;

namespace HmmEmu.Kernel.Locking;

/// <summary>
/// The runtime lock checker, after the kernel's lockdep and might_sleep. It learns the order in which lock classes
/// are taken, and reports (by throwing <see cref="KernelRuleViolationException"/>) the first acquisition that
/// closes a cycle, naming both chains; recursive locking; a lock used both in interrupt context and with
/// interrupts enabled; and sleeping in atomic, interrupt or non-blockable-invalidation context. Pseudo-locks
/// ("fs_reclaim", "mmu_notifier_invalidate_range_start") make reclaim and invalidation part of the order graph, so
/// that allocating while holding a lock an invalidate callback takes is reported on the first run that does both.
/// </summary>
public sealed class Lockdep
{
    private const int MaxSiteFrames = 6;

    private readonly Lock _lock = new();
    private readonly List<LockClass> _classes = [];
    private readonly Dictionary<string, LockClass> _byName = new(StringComparer.Ordinal);
    private readonly List<List<Edge>> _edges = [];
    private ulong[][] _edgeBits = [];

    internal Lockdep()
    {
        FsReclaim = GetClass("fs_reclaim", LockKind.Map);
        InvalidateRangeStart = GetClass("mmu_notifier_invalidate_range_start", LockKind.Map);
    }

    /// <summary>
    /// Whether ordering, recursion, irq-safety and sleep-context checks run. On by default; benchmarks turn it off
    /// to measure the kernel without the checker (held-lock bookkeeping still runs, since the kernel relies on it).
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The "inside reclaim" pseudo-lock (lockdep's __fs_reclaim_map).</summary>
    public LockClass FsReclaim { get; }

    /// <summary>The "inside an mmu-notifier invalidation" pseudo-lock (__mmu_notifier_invalidate_range_start_map).</summary>
    public LockClass InvalidateRangeStart { get; }

    /// <summary>How many lock classes have been registered.</summary>
    public int ClassCount
    {
        get { lock (_lock) return _classes.Count; }
    }

    /// <summary>Returns the class named <paramref name="name"/>, creating it on first use.</summary>
    public LockClass GetClass(string name, LockKind kind)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_lock)
        {
            if (_byName.TryGetValue(name, out var existing))
            {
                if (existing.Kind != kind)
                    throw new ArgumentException(
                        $"Lock class '{name}' is already a {existing.Kind}; a {kind} cannot share its name. Give each lock kind its own class name.",
                        nameof(name));
                return existing;
            }
            var cls = new LockClass(_classes.Count, name, kind);
            _classes.Add(cls);
            _byName.Add(name, cls);
            _edges.Add([]);
            if (_edgeBits.Length < _classes.Count)
            {
                int n = Math.Max(64, _edgeBits.Length * 2);
                Array.Resize(ref _edgeBits, n);
            }
            int words = (_classes.Count + 63) / 64;
            for (int i = 0; i < _classes.Count; i++)
            {
                var row = _edgeBits[i];
                if (row is null || row.Length < words)
                {
                    var grown = new ulong[Math.Max(words, 2)];
                    row?.CopyTo(grown, 0);
                    _edgeBits[i] = grown;
                }
            }
            return cls;
        }
    }

    /// <summary>Whether the checker has recorded that <paramref name="to"/> was taken while <paramref name="from"/> was held.</summary>
    public bool HasDependency(LockClass from, LockClass to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        lock (_lock) return EdgeExists(from.Id, to.Id);
    }

    internal void Acquire(TaskContext task, LockClass cls, object instance, bool shared, bool trylock)
    {
        if (Enabled)
            Check(task, cls, instance, shared, trylock);
        task.Push(new HeldLock(cls, instance, shared, trylock));
    }

    internal void Release(TaskContext task, LockClass cls, object instance)
    {
        if (task.Pop(instance) is null)
        {
            throw new KernelRuleViolationException(
                $"BUG: bad unlock balance detected! {task.Name} is trying to release lock {cls} but does not hold it. " +
                "Release a lock only on the thread that acquired it, exactly once.");
        }
    }

    /// <summary>Records entering a pseudo-lock region (lock_map_acquire).</summary>
    internal void MapAcquire(TaskContext task, LockClass map) => Acquire(task, map, map, shared: false, trylock: false);

    /// <summary>Records leaving a pseudo-lock region (lock_map_release).</summary>
    internal void MapRelease(TaskContext task, LockClass map) => Release(task, map, map);

    /// <summary>Records a pseudo-lock acquire immediately followed by its release: only the ordering is learnt.</summary>
    internal void MapTouch(TaskContext task, LockClass map)
    {
        MapAcquire(task, map);
        MapRelease(task, map);
    }

    /// <summary>
    /// might_sleep(): reports a sleep attempted in interrupt context, with a spinlock held, or inside a
    /// non-blockable invalidation.
    /// </summary>
    internal void MightSleep(TaskContext task, string what)
    {
        if (!Enabled)
            return;
        if (task.IrqDepth > 0)
        {
            throw new KernelRuleViolationException(
                $"BUG: sleeping function called from invalid context: {what} on {task.Name} in interrupt context. " +
                "Interrupt handlers must not sleep: defer the work to a work queue or a threaded handler.");
        }
        if (task.NonBlockDepth > 0)
        {
            throw new KernelRuleViolationException(
                $"BUG: sleeping function called from invalid context: {what} on {task.Name} inside a non-blockable " +
                "mmu-notifier invalidation (range.Blockable is false, e.g. from the OOM reaper). The callback must not " +
                "sleep: use TryLock and return false if the lock is contended, and do no blocking allocation or wait.");
        }
        if (task.AtomicDepth > 0)
        {
            throw new KernelRuleViolationException(
                $"BUG: sleeping function called from invalid context: {what} on {task.Name} in atomic context " +
                $"(holding spinlock {task.FirstSpinlockName()}). Release the spinlock first, or use a mutex if the " +
                "critical section has to sleep.");
        }
    }

    /// <summary>lockdep_assert_held(): throws unless the calling thread holds <paramref name="instance"/>.</summary>
    internal static void AssertHeld(TaskContext task, object instance, string lockName, string requiredBy)
    {
        if (!task.Holds(instance))
        {
            throw new KernelRuleViolationException(
                $"{requiredBy} requires {lockName} to be held by the caller, but {task.Name} does not hold it. " +
                $"Take {lockName} before calling {requiredBy}.");
        }
    }

    private void Check(TaskContext task, LockClass cls, object instance, bool shared, bool trylock)
    {
        var held = task.Held;
        for (int i = 0; i < held.Length; i++)
        {
            var h = held[i];
            if (!ReferenceEquals(h.Class, cls) || trylock)
                continue;
            string what = ReferenceEquals(h.Instance, instance) ? "the same lock" : "another lock of the same class";
            throw new KernelRuleViolationException(
                Banner("WARNING: possible recursive locking detected") +
                $"{task.Name} is trying to acquire lock {cls}{(shared ? " for reading" : "")}\n" +
                $"but it already holds {what}{(h.Shared ? " (for reading)" : "")}.\n\n" +
                (ReferenceEquals(h.Instance, instance)
                    ? " *** DEADLOCK ***\nA thread waiting for a lock it holds waits forever (for a reader/writer lock, a queued writer makes a second read acquisition wait too). Restructure so the lock is taken once.\n"
                    : "If nesting two locks of this class is intended, give the inner one its own class (e.g. LockNested with a subclass) and always nest them in the same order.\n"));
        }

        if (cls.Kind == LockKind.SpinLock)
            CheckIrqSafety(task, cls);

        if (trylock)
            return;
        for (int i = 0; i < held.Length; i++)
        {
            var from = held[i].Class;
            if (EdgeExistsFast(from.Id, cls.Id))
                continue;
            AddDependency(task, from, cls);
        }
    }

    private void CheckIrqSafety(TaskContext task, LockClass cls)
    {
        bool inIrq = task.IrqDepth > 0;
        bool irqsOn = !inIrq && task.IrqsOffDepth == 0;
        if (!inIrq && !irqsOn)
            return;
        lock (_lock)
        {
            if (inIrq)
            {
                if (cls.UsedIrqsOnSite is not null)
                    throw new KernelRuleViolationException(InconsistentIrqReport(task, cls, "IN-HARDIRQ", cls.UsedIrqsOnSite));
                cls.UsedInIrqSite ??= CaptureSite();
            }
            else
            {
                if (cls.UsedInIrqSite is not null)
                    throw new KernelRuleViolationException(InconsistentIrqReport(task, cls, "HARDIRQ-ON", cls.UsedInIrqSite));
                cls.UsedIrqsOnSite ??= CaptureSite();
            }
        }
    }

    private static string InconsistentIrqReport(TaskContext task, LockClass cls, string now, string otherSite) =>
        Banner("WARNING: inconsistent lock state") +
        $"{task.Name} takes lock {cls} {(now == "IN-HARDIRQ" ? "in interrupt context" : "with interrupts enabled")},\n" +
        $"but it was also taken {(now == "IN-HARDIRQ" ? "with interrupts enabled" : "in interrupt context")} at: {otherSite}\n\n" +
        "An interrupt arriving while the lock is held with interrupts enabled deadlocks on it.\n" +
        "Take it with LockIrqSave() outside interrupt context.\n";

    private void AddDependency(TaskContext task, LockClass from, LockClass to)
    {
        string site = CaptureSite();
        lock (_lock)
        {
            if (EdgeExists(from.Id, to.Id))
                return;
            var path = FindPath(to.Id, from.Id);
            if (path is not null)
                throw new KernelRuleViolationException(CircularReport(task, from, to, site, path));
            _edges[from.Id].Add(new Edge(from, to, site, task.Name));
            _edgeBits[from.Id][to.Id >> 6] |= 1UL << (to.Id & 63);
        }
    }

    private bool EdgeExistsFast(int from, int to)
    {
        var bits = Volatile.Read(ref _edgeBits);
        var row = from < bits.Length ? bits[from] : null;
        return row is not null && (to >> 6) < row.Length && (Volatile.Read(ref row[to >> 6]) & (1UL << (to & 63))) != 0;
    }

    private bool EdgeExists(int from, int to) => (_edgeBits[from][to >> 6] & (1UL << (to & 63))) != 0;

    /// <summary>Breadth-first search for a dependency path start →* goal, in edge insertion order. Caller holds _lock.</summary>
    private List<Edge>? FindPath(int start, int goal)
    {
        var prev = new Edge?[_classes.Count];
        var seen = new bool[_classes.Count];
        var queue = new Queue<int>();
        queue.Enqueue(start);
        seen[start] = true;
        while (queue.Count > 0)
        {
            int c = queue.Dequeue();
            if (c == goal)
            {
                var path = new List<Edge>();
                while (c != start)
                {
                    var e = prev[c]!;
                    path.Add(e);
                    c = e.From.Id;
                }
                path.Reverse();
                return path;
            }
            foreach (var e in _edges[c])
            {
                if (seen[e.To.Id])
                    continue;
                seen[e.To.Id] = true;
                prev[e.To.Id] = e;
                queue.Enqueue(e.To.Id);
            }
        }
        return null;
    }

    private static string CircularReport(TaskContext task, LockClass from, LockClass to, string site, List<Edge> existing)
    {
        var sb = new StringBuilder();
        sb.Append(Banner("WARNING: possible circular locking dependency detected"));
        sb.Append(task.Name).Append(" is trying to acquire lock:\n  ").Append(to).Append("\n  at: ").Append(site).Append("\n\n");
        sb.Append("but it already holds lock:\n  ").Append(from).Append("\n\n");
        sb.Append("which lock already depends on the new lock.\n\n");
        sb.Append("the existing dependency chain is:\n");
        foreach (var e in existing)
        {
            sb.Append("  ").Append(e.From).Append(" -> ").Append(e.To).Append("\n      established by ").Append(e.Thread)
              .Append(" at: ").Append(e.Site).Append('\n');
        }
        sb.Append("and the new dependency closes the cycle:\n  ").Append(from).Append(" -> ").Append(to).Append('\n');
        sb.Append("\n Possible unsafe locking scenario:\n\n");
        sb.Append("       CPU0                                CPU1\n");
        sb.Append("       ----                                ----\n");
        sb.Append("  lock").Append(from).Append(";\n");
        sb.Append("                                      lock").Append(to).Append(";\n");
        sb.Append("                                      lock").Append(from).Append(";\n");
        sb.Append("  lock").Append(to).Append(";\n\n *** DEADLOCK ***\n\n");
        sb.Append(Hint(from, to, existing));
        return sb.ToString();
    }

    private static string Hint(LockClass from, LockClass to, List<Edge> existing)
    {
        bool Involves(string name) =>
            from.Name == name || to.Name == name || existing.Exists(e => e.From.Name == name || e.To.Name == name);
        if (Involves("fs_reclaim") && Involves("mmu_notifier_invalidate_range_start"))
        {
            return "How to fix: a blocking allocation (one that may enter reclaim, e.g. Gfp.Kernel) happens while holding a " +
                   "lock that an mmu-notifier invalidate callback takes. Reclaim can invalidate, and the callback then waits " +
                   "for the lock this thread holds. Allocate before taking the lock, or allocate with Gfp.Atomic/Gfp.NoWait under it.\n";
        }
        if (Involves("mmu_notifier_invalidate_range_start"))
        {
            return "How to fix: the lock an invalidate callback takes must be the innermost lock. Never hold it while taking " +
                   "mmap_lock, calling Hmm.RangeFault, MmuIntervalNotifier.ReadBegin or Remove; the order is mmap_lock -> " +
                   "invalidation -> driver lock. Take the driver lock only for the ReadRetry check and the device page-table commit.\n";
        }
        return "How to fix: always take these locks in one global order.\n";
    }

    private static string Banner(string title) =>
        "\n======================================================\n" + title + "\n------------------------------------------------------\n";

    /// <summary>A short call-site description: the first frames outside the locking layer.</summary>
    internal static string CaptureSite()
    {
        var trace = new StackTrace(2, false);
        var sb = new StringBuilder();
        int taken = 0;
        foreach (var frame in trace.GetFrames())
        {
            var method = frame.GetMethod();
            var type = method?.DeclaringType;
            if (method is null || type is null)
                continue;
            string ns = type.Namespace ?? "";
            if (ns == typeof(Lockdep).Namespace || ns.StartsWith("System", StringComparison.Ordinal))
                continue;
            if (taken > 0)
                sb.Append(" <- ");
            sb.Append(TypeName(type)).Append('.').Append(method.Name);
            if (++taken == MaxSiteFrames)
                break;
        }
        return taken == 0 ? "(unknown)" : sb.ToString();
    }

    private static string TypeName(Type type)
    {
        var t = type;
        // Compiler-generated closures and state machines: name the user type that contains them.
        while (t.DeclaringType is not null && t.Name.Contains('<', StringComparison.Ordinal))
            t = t.DeclaringType;
        string name = t.Name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        return tick >= 0 ? name[..tick] : name;
    }

    private sealed record Edge(LockClass From, LockClass To, string Site, string Thread);
}
