using HmmEmu.Kernel.Vm;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// The reference model: ideal memory per process (one copy per logical page, no TLBs, instantaneous invalidation),
/// page protections and fork lineage. A tracked word holds a set of candidate values rather than one value: after
/// two commands ran concurrently it may hold either one's write, and the next read that observes it narrows the set
/// to what it saw (a per-word linearizability check, as Porcupine does per key).
/// </summary>
public sealed class IdealMemory
{
    private readonly List<ProcessState?> _processes = [];

    /// <summary>A model process: per tracked page its protection (null = unmapped) and its words' candidate values.</summary>
    public sealed class ProcessState
    {
        internal ProcessState(int parent)
        {
            Parent = parent;
            Prot = new Prot?[Layout.Pages];
            Words = new ulong[Layout.Pages * Layout.WordsPerPage][];
        }

        /// <summary>The model id of the process it was forked from (-1 for the first).</summary>
        public int Parent { get; }

        /// <summary>Protection of each tracked page; null where unmapped.</summary>
        public Prot?[] Prot { get; }

        /// <summary>Candidate values of each tracked word (page * WordsPerPage + word); null where unmapped.</summary>
        public ulong[]?[] Words { get; }

        internal ProcessState Clone()
        {
            var c = new ProcessState(Parent);
            Array.Copy(Prot, c.Prot, Prot.Length);
            Array.Copy(Words, c.Words, Words.Length);   // candidate arrays are never mutated in place
            return c;
        }
    }

    /// <summary>The state of model process <paramref name="id"/>, or null if it exited or never existed.</summary>
    public ProcessState? Process(int id) => id >= 0 && id < _processes.Count ? _processes[id] : null;

    /// <summary>How many process ids were handed out (live or not).</summary>
    public int ProcessIds => _processes.Count;

    /// <summary>Adds a process with nothing mapped (the first) and returns its id.</summary>
    public int AddProcess()
    {
        _processes.Add(new ProcessState(-1));
        return _processes.Count - 1;
    }

    /// <summary>fork: a child with the parent's protections and values (copy-on-write isolation from here on).</summary>
    public int Fork(int parent)
    {
        var p = Process(parent) ?? throw new InvalidOperationException($"model process {parent} is not alive");
        var child = new ProcessState(parent);
        Array.Copy(p.Prot, child.Prot, p.Prot.Length);
        Array.Copy(p.Words, child.Words, p.Words.Length);
        _processes.Add(child);
        return _processes.Count - 1;
    }

    /// <summary>exit: the process and its memory are gone.</summary>
    public void Exit(int id) => _processes[id] = null;

    /// <summary>A deep copy (candidate arrays are shared; they are immutable).</summary>
    public IdealMemory Clone()
    {
        var c = new IdealMemory();
        foreach (var p in _processes)
            c._processes.Add(p?.Clone());
        return c;
    }

    /// <summary>Maps pages [first, first+count) of <paramref name="id"/> fresh (zeroed) with <paramref name="prot"/>.</summary>
    public void Map(int id, int first, int count, Prot prot)
    {
        var p = Process(id)!;
        for (int page = first; page < first + count; page++)
        {
            p.Prot[page] = prot;
            for (int w = 0; w < Layout.WordsPerPage; w++)
                p.Words[Index(page, w)] = [0UL];
        }
    }

    /// <summary>Unmaps pages [first, first+count) of <paramref name="id"/>.</summary>
    public void Unmap(int id, int first, int count)
    {
        var p = Process(id)!;
        for (int page = first; page < first + count; page++)
        {
            p.Prot[page] = null;
            for (int w = 0; w < Layout.WordsPerPage; w++)
                p.Words[Index(page, w)] = null;
        }
    }

    /// <summary>The protection of a page, or null if unmapped (or the process is gone).</summary>
    public Prot? ProtOf(int id, int page) => Process(id)?.Prot[page];

    /// <summary>Whether every page of [first, first+count) is mapped with at least <paramref name="need"/>.</summary>
    public bool AllowAll(int id, int first, int count, Prot need)
    {
        for (int page = first; page < first + count; page++)
        {
            if (ProtOf(id, page) is not Prot prot || (prot & need) != need)
                return false;
        }
        return true;
    }

    /// <summary>The candidate values of a word (empty if unmapped).</summary>
    public ulong[] Candidates(int id, int page, int word) => Process(id)?.Words[Index(page, word)] ?? [];

    /// <summary>Sets a word to exactly <paramref name="value"/>.</summary>
    public void Set(int id, int page, int word, ulong value)
    {
        var p = Process(id);
        if (p?.Prot[page] is not null)
            p.Words[Index(page, word)] = [value];
    }

    /// <summary>Adds <paramref name="value"/> to a word's candidates (a write that may or may not have landed).</summary>
    public void Maybe(int id, int page, int word, ulong value)
    {
        var p = Process(id);
        if (p?.Prot[page] is null || p.Words[Index(page, word)] is not { } c || Array.IndexOf(c, value) >= 0)
            return;
        p.Words[Index(page, word)] = [.. c, value];
    }

    /// <summary>An atomic add whose old value is unknown: every candidate moves by <paramref name="delta"/>.</summary>
    public void AddToEach(int id, int page, int word, long delta)
    {
        var p = Process(id);
        if (p?.Prot[page] is null || p.Words[Index(page, word)] is not { } c)
            return;
        p.Words[Index(page, word)] = [.. c.Select(v => unchecked(v + (ulong)delta))];
    }

    /// <summary>An atomic add that may or may not have happened: each candidate moved by <paramref name="delta"/> is added.</summary>
    public void MaybeAddToEach(int id, int page, int word, long delta)
    {
        var p = Process(id);
        if (p?.Prot[page] is null || p.Words[Index(page, word)] is not { } c)
            return;
        p.Words[Index(page, word)] = [.. c.Concat(c.Select(v => unchecked(v + (ulong)delta))).Distinct()];
    }

    /// <summary>A read observed <paramref name="value"/>: if it is a candidate the word now holds exactly it. Returns whether it was a candidate.</summary>
    public bool Observe(int id, int page, int word, ulong value)
    {
        var c = Candidates(id, page, word);
        if (Array.IndexOf(c, value) < 0)
            return false;
        Process(id)!.Words[Index(page, word)] = [value];
        return true;
    }

    /// <summary>
    /// The model after two concurrent commands: the union, word by word, of the states their two orders lead to.
    /// Protections must agree (the suite never runs two commands that change protections concurrently).
    /// </summary>
    public static IdealMemory Merge(IdealMemory a, IdealMemory b)
    {
        var m = a.Clone();
        for (int id = 0; id < m._processes.Count; id++)
        {
            var pa = m._processes[id];
            var pb = b.Process(id);
            if (pa is null || pb is null)
            {
                m._processes[id] = pa is null ? null : pa;
                continue;
            }
            for (int i = 0; i < pa.Words.Length; i++)
            {
                if (pa.Words[i] is { } wa && pb.Words[i] is { } wb)
                    pa.Words[i] = [.. wa.Union(wb)];
            }
        }
        return m;
    }

    private static int Index(int page, int word) => page * Layout.WordsPerPage + word;

    /// <summary>"0x…|0x…" for messages.</summary>
    public static string Format(ulong[] candidates) =>
        candidates.Length == 0 ? "(unmapped)" : string.Join("|", candidates.Select(v => $"0x{v:x}"));
}
