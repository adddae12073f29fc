namespace HmmEmu.Kernel.Collections;

/// <summary>
/// An interval tree over closed intervals [start, last] (the kernel's interval_tree). Stored as an array sorted by
/// (start, insertion order) with a max-last segment tree on top, so a query visits only intervals that intersect,
/// in a fixed order. Updates replace an immutable snapshot (O(n)), which lets readers iterate a snapshot without a
/// lock while an update runs; mmu-notifier registration is rare next to invalidation, which makes this the right trade.
/// </summary>
/// <typeparam name="T">The stored item (compared by reference).</typeparam>
internal sealed class IntervalTree<T> where T : class
{
    private Snapshot _current = Snapshot.Empty;

    /// <summary>Number of intervals.</summary>
    public int Count => _current.Count;

    /// <summary>The current contents, for lock-free iteration.</summary>
    public Snapshot Current => Volatile.Read(ref _current);

    /// <summary>Inserts <paramref name="item"/> with interval [<paramref name="start"/>, <paramref name="last"/>]. Caller serializes updates.</summary>
    public void Insert(T item, ulong start, ulong last, long order)
    {
        if (last < start)
            throw new ArgumentOutOfRangeException(nameof(last), $"Interval [{start:x}, {last:x}] ends before it starts.");
        var s = _current;
        int n = s.Count;
        var entries = new Entry[n + 1];
        int pos = 0;
        while (pos < n && Compare(s.Entries[pos], start, order) < 0)
            pos++;
        Array.Copy(s.Entries, 0, entries, 0, pos);
        entries[pos] = new Entry(start, last, order, item);
        Array.Copy(s.Entries, pos, entries, pos + 1, n - pos);
        Volatile.Write(ref _current, new Snapshot(entries));
    }

    /// <summary>Removes <paramref name="item"/>; returns whether it was present. Caller serializes updates.</summary>
    public bool Remove(T item)
    {
        var s = _current;
        int idx = -1;
        for (int i = 0; i < s.Count; i++)
        {
            if (ReferenceEquals(s.Entries[i].Item, item))
            {
                idx = i;
                break;
            }
        }
        if (idx < 0)
            return false;
        var entries = new Entry[s.Count - 1];
        Array.Copy(s.Entries, 0, entries, 0, idx);
        Array.Copy(s.Entries, idx + 1, entries, idx, s.Count - idx - 1);
        Volatile.Write(ref _current, new Snapshot(entries));
        return true;
    }

    private static int Compare(in Entry e, ulong start, long order)
    {
        int c = e.Start.CompareTo(start);
        return c != 0 ? c : e.Order.CompareTo(order);
    }

    /// <summary>One stored interval.</summary>
    internal readonly record struct Entry(ulong Start, ulong Last, long Order, T Item);

    /// <summary>An immutable version of the tree.</summary>
    internal sealed class Snapshot
    {
        public static readonly Snapshot Empty = new([]);

        private readonly ulong[] _maxLast;
        private readonly int _leaves;

        public Snapshot(Entry[] entries)
        {
            Entries = entries;
            _leaves = 1;
            while (_leaves < Math.Max(1, entries.Length))
                _leaves <<= 1;
            _maxLast = new ulong[2 * _leaves];
            for (int i = 0; i < entries.Length; i++)
                _maxLast[_leaves + i] = entries[i].Last;
            for (int i = _leaves - 1; i >= 1; i--)
                _maxLast[i] = Math.Max(_maxLast[2 * i], _maxLast[2 * i + 1]);
        }

        public Entry[] Entries { get; }

        public int Count => Entries.Length;

        /// <summary>Whether any interval intersects [start, last].</summary>
        public bool Intersects(ulong start, ulong last) => First(start, last) >= 0;

        /// <summary>Index of the first interval intersecting [start, last], or -1.</summary>
        public int First(ulong start, ulong last) => Next(-1, start, last);

        /// <summary>Index of the next interval after <paramref name="index"/> intersecting [start, last], or -1.</summary>
        public int Next(int index, ulong start, ulong last)
        {
            int hi = UpperBound(last); // entries [0, hi) have Start <= last
            int from = index + 1;
            if (from >= hi)
                return -1;
            return Descend(1, 0, _leaves, from, hi, start);
        }

        private int Descend(int node, int lo, int hi, int from, int limit, ulong minLast)
        {
            if (hi <= from || lo >= limit || _maxLast[node] < minLast || lo >= Entries.Length)
                return -1;
            if (hi - lo == 1)
                return lo;
            int mid = (lo + hi) >> 1;
            int left = Descend(2 * node, lo, mid, from, limit, minLast);
            return left >= 0 ? left : Descend(2 * node + 1, mid, hi, from, limit, minLast);
        }

        private int UpperBound(ulong last)
        {
            int lo = 0, hi = Entries.Length;
            while (lo < hi)
            {
                int mid = (lo + hi) >> 1;
                if (Entries[mid].Start <= last)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            return lo;
        }
    }
}
