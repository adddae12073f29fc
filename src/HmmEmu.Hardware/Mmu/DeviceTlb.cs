using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HmmEmu.Hardware.Translation;
using HmmEmu.Simulation;
using TraceEventType = HmmEmu.Simulation.TraceEventType;

namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// A set-associative device TLB, one per engine, tagged by address-space id, caching 4 KiB translations (a 2 MiB
/// leaf is cached one 4 KiB page at a time). It also keeps the engine's in-flight translation uses, because an
/// invalidation completes only when the uses that may hold a stale translation have ended, and the engine's
/// <see cref="PageWalkCache"/> of level-1 tables, which every invalidation empties.
/// </summary>
/// <remarks>
/// <para>
/// Layout: one flat array, <see cref="Sets"/> sets of <see cref="Ways"/> entries each (a set's stride is the ways
/// rounded up to a power of two); page number <c>vpn</c> lives in set <c>vpn mod Sets</c>. A fill goes to the way already holding the page, else the first empty way, else the set's
/// round-robin victim (which then advances): replacement is first-in first-out per set and fully deterministic.
/// </para>
/// <para>
/// Concurrency: fills and invalidations take the TLB's lock. A writer clears an entry's tag before it changes the
/// leaf and publishes the new tag last (release stores); a lookup reads the tag, the leaf and the tag again, and
/// takes the lock only if the tag changed in between. A leaf read between two equal reads of a tag therefore belongs
/// to that tag (a writer that changed the leaf cleared the tag first, and restored it only after the new leaf). A
/// hit costs no lock and no interlocked operation, and never allocates. Invalidations bump a sequence that a
/// fill compares against the value read before its walk, so a walk that raced an invalidation never installs what
/// it read. Counters are plain fields: exact in deterministic mode, approximate if several threads translate
/// through one TLB at once in threaded mode.
/// </para>
/// </remarks>
public sealed class DeviceTlb
{
    /// <summary>The default number of level-1 tables the page-walk cache keeps.</summary>
    public const int DefaultWalkCacheEntries = 8;

    // An empty entry's tag: a real tag, (asid << 48) | page number with a 36-bit page number, is never all ones.
    private const ulong Empty = ulong.MaxValue;
    private const int AsidBits = 16;
    // A tag is (asid << AsidShift) | page number: the same key the in-flight uses compare (InFlightUses.Covers).
    private const int AsidShift = 48;
    private const ulong VpnMask = (DevicePageTable.VirtualAddressLimit >> DevicePageTable.PageShift) - 1;
    private const ulong MaxVpn = VpnMask;

    private static readonly TraceEventType s_invalidateEvent =
        new("mmu", "tlb_invalidate", "kind_asid", "first_page", "last_page");

    private readonly Entry[] _entries;
    private readonly int[] _victims;
    private readonly int _setMask;
    private readonly int _ways;
    private readonly int _strideShift;
    private readonly HitView _hitView;
    private readonly Lock _lock = new();
    private readonly InFlightUses _uses;
    private readonly PageWalkCache _walkCache;
    private readonly Scheduler _scheduler;
    private long _sequence;

    private long _hits;
    private long _misses;
    private long _walks;
    private long _walkFaults;
    private long _fills;
    private long _fillsDiscarded;
    private long _evictions;
    private long _invalidations;
    private long _entriesDropped;
    private long _invalidationWaits;

    /// <summary>
    /// Creates an empty TLB of <paramref name="sets"/> (a power of two) × <paramref name="ways"/> entries with a pool of
    /// <paramref name="useSlots"/> in-flight uses, whose waits go through <paramref name="scheduler"/>, and a page-walk
    /// cache of <paramref name="walkCacheEntries"/> level-1 tables (0: none).
    /// </summary>
    public DeviceTlb(Scheduler scheduler, string name, int sets = 64, int ways = 4, int useSlots = 64,
        int walkCacheEntries = DefaultWalkCacheEntries)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (sets < 1 || sets > (1 << 16) || !BitOperations.IsPow2(sets))
            throw new ArgumentOutOfRangeException(nameof(sets), sets, "TLB sets must be a power of two from 1 to 65536.");
        if (ways is < 1 or > 64)
            throw new ArgumentOutOfRangeException(nameof(ways), ways, "TLB ways must be from 1 to 64.");
        if (useSlots is < 1 or > 4096)
            throw new ArgumentOutOfRangeException(nameof(useSlots), useSlots, "In-flight use slots must be from 1 to 4096.");
        _scheduler = scheduler;
        Name = name;
        _strideShift = BitOperations.Log2(BitOperations.RoundUpToPowerOf2((uint)ways));
        _entries = new Entry[sets << _strideShift];
        foreach (ref var e in _entries.AsSpan())
            e.Tag = Empty;
        // A set's byte offset in _entries is (vpn << setByteShift) & (set mask << setByteShift) (an Entry is 16 bytes).
        int setByteShift = _strideShift + 4;
        _victims = new int[sets];
        _setMask = sets - 1;
        _ways = ways;
        _hitView = new HitView(_entries, setByteShift, (ulong)(sets - 1) << setByteShift, ways);
        _uses = new InFlightUses(useSlots, new SimWaitQueue(scheduler, "tlb " + name), "tlb " + name);
        _walkCache = new PageWalkCache(walkCacheEntries);
    }

    /// <summary>The TLB's name (used in wait reasons, traces and error messages).</summary>
    public string Name { get; }

    /// <summary>Number of sets.</summary>
    public int Sets => _setMask + 1;

    /// <summary>Entries per set.</summary>
    public int Ways => _ways;

    /// <summary>Total entries.</summary>
    public int Capacity => Sets * _ways;

    /// <summary>Level-1 tables the page-walk cache keeps at most (0: no page-walk cache).</summary>
    public int WalkCacheCapacity => _walkCache.Capacity;

    /// <summary>Size of the in-flight use pool.</summary>
    public int UseSlots => _uses.Count;

    /// <summary>Uses begun and not yet ended.</summary>
    public int ActiveUses => _uses.Active;

    /// <summary>Valid entries now. Takes the TLB's lock.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                int n = 0;
                foreach (ref readonly var e in _entries.AsSpan())
                {
                    if (e.Tag != Empty)
                        n++;
                }
                return n;
            }
        }
    }

    /// <summary>A snapshot of the counters.</summary>
    public TlbStats Stats => new(
        Volatile.Read(ref _hits) + _uses.Hits, Volatile.Read(ref _misses), Volatile.Read(ref _walks), Volatile.Read(ref _walkFaults),
        Volatile.Read(ref _fills), Volatile.Read(ref _fillsDiscarded), Volatile.Read(ref _evictions),
        Volatile.Read(ref _invalidations), Volatile.Read(ref _entriesDropped), Volatile.Read(ref _invalidationWaits),
        _walkCache.Hits, _walkCache.Misses);

    internal InFlightUses Uses => _uses;

    /// <summary>The page-walk cache; its entries hold only under the <see cref="Sequence"/> they were filled at.</summary>
    internal PageWalkCache WalkCache => _walkCache;

    /// <summary>
    /// The invalidation sequence; a fill passes back the value it read before walking, and the page-walk cache tags its
    /// entries with it.
    /// </summary>
    internal long Sequence => Volatile.Read(ref _sequence);

    /// <summary>Whether the TLB holds page <paramref name="address"/> of <paramref name="asid"/>, without counting a lookup.</summary>
    public bool Contains(ushort asid, ulong address)
    {
        if (address >= DevicePageTable.VirtualAddressLimit)
            return false;
        ulong vpn = address >> DevicePageTable.PageShift;
        lock (_lock)
            return FindWay(SetOfVpn(vpn), Tag(asid, vpn)) >= 0;
    }

    /// <summary>
    /// Every cached translation, in set and way order: what a debugger or a coherence checker compares against the page
    /// tables. Counts no lookup. Takes the TLB's lock; never sleeps.
    /// </summary>
    public IReadOnlyList<TlbEntry> Snapshot()
    {
        var entries = new List<TlbEntry>();
        lock (_lock)
        {
            foreach (ref readonly var e in _entries.AsSpan())
            {
                if (e.Tag != Empty)
                    entries.Add(new TlbEntry((ushort)(e.Tag >> AsidShift), (e.Tag & VpnMask) << DevicePageTable.PageShift, new DevicePte(e.Pte)));
            }
        }
        return entries;
    }

    /// <summary>The set page <paramref name="address"/> maps to (for tests and for reasoning about conflicts).</summary>
    public int SetOf(ulong address) => SetOfVpn(address >> DevicePageTable.PageShift);

    /// <summary>
    /// Removes page <paramref name="address"/> of <paramref name="asid"/>. The entry is gone at once; the returned
    /// ticket completes when the in-flight uses that translated that page have ended. Never sleeps.
    /// </summary>
    public TlbInvalidation InvalidatePage(ushort asid, ulong address)
    {
        ulong vpn = Math.Min(address >> DevicePageTable.PageShift, MaxVpn + 1);
        return Invalidate(InvalidationKind.Range, asid, vpn, vpn);
    }

    /// <summary>
    /// Removes every page of <paramref name="asid"/> that overlaps [<paramref name="start"/>, <paramref name="end"/>)
    /// (the kernel's exclusive end; unaligned bounds cover the pages they touch). Never sleeps.
    /// </summary>
    public TlbInvalidation InvalidateRange(ushort asid, ulong start, ulong end)
    {
        if (end <= start)
        {
            throw new ArgumentException(
                $"TLB invalidation range [0x{start:x}, 0x{end:x}) is empty or reversed; the end is exclusive and must " +
                "be above the start.", nameof(end));
        }
        ulong first = Math.Min(start >> DevicePageTable.PageShift, MaxVpn + 1);
        ulong last = Math.Min((end - 1) >> DevicePageTable.PageShift, MaxVpn);
        return Invalidate(InvalidationKind.Range, asid, first, last);
    }

    /// <summary>Removes every entry of <paramref name="asid"/>. Never sleeps.</summary>
    public TlbInvalidation InvalidateAsid(ushort asid) => Invalidate(InvalidationKind.Asid, asid, 0, MaxVpn);

    /// <summary>Removes every entry. Never sleeps.</summary>
    public TlbInvalidation InvalidateAll() => Invalidate(InvalidationKind.All, 0, 0, MaxVpn);

    /// <summary>
    /// Checks the structure: every valid entry sits in the set its page maps to, no page is cached twice, no set is
    /// mid-change, the use pool and the page-walk cache are consistent. For tests; call it when no thread is translating.
    /// </summary>
    public void AssertInvariants()
    {
        lock (_lock)
        {
            for (int set = 0; set <= _setMask; set++)
            {
                if ((uint)_victims[set] >= (uint)_ways)
                    throw new InvalidOperationException($"{Name}: set {set} has victim way {_victims[set]} of {_ways}.");
                int b = set << _strideShift;
                for (int w = (1 << _strideShift) - 1; w >= _ways; w--)
                {
                    if (_entries[b + w].Tag != Empty || _entries[b + w].Pte != 0)
                        throw new InvalidOperationException($"{Name}: padding way {w} of set {set} is in use.");
                }
                for (int w = 0; w < _ways; w++)
                {
                    ulong tag = _entries[b + w].Tag;
                    if (tag == Empty)
                        continue;
                    ulong vpn = tag & VpnMask;
                    if (SetOfVpn(vpn) != set)
                        throw new InvalidOperationException($"{Name}: page 0x{vpn:x} is cached in set {set}, not {SetOfVpn(vpn)}.");
                    for (int o = w + 1; o < _ways; o++)
                    {
                        if (_entries[b + o].Tag == tag)
                            throw new InvalidOperationException($"{Name}: page 0x{vpn:x} asid {tag >> AsidShift} is cached twice in set {set}.");
                    }
                }
            }
        }
        _uses.AssertInvariants();
        _walkCache.AssertInvariants(Name);
    }

    /// <summary>
    /// A translation's lookup under <paramref name="use"/>, in the order the ATS rule needs: checks the use (throws for
    /// one that is not live), fails an address at or past 2^48 with <see cref="TranslationStatus.OutOfRange"/>, records
    /// the use's touch of the page (with its fence), then looks the page up: <see cref="TranslationStatus.Ok"/> with
    /// <paramref name="pte"/> on a hit, <see cref="TranslationStatus.NotPresent"/> on a miss (the caller walks and fills;
    /// an invalidation after this point waits for the use). Counts the hit or miss. Never sleeps.
    /// </summary>
    internal TranslationStatus LookupUnderUse(TranslationUse use, ushort asid, ulong address, out ulong pte)
    {
        ref var slot = ref _uses.Live(use.Slot);
        pte = 0;
        if (address >= DevicePageTable.VirtualAddressLimit)
            return TranslationStatus.OutOfRange;
        ulong vpn = address >> DevicePageTable.PageShift;
        InFlightUses.Touch(ref slot, asid, vpn);
        return TryLookup(asid, vpn, out pte) ? TranslationStatus.Ok : TranslationStatus.NotPresent;
    }

    /// <summary>
    /// Looks page <paramref name="vpn"/> of <paramref name="asid"/> up and counts a hit or a miss. Lock-free unless a
    /// change to the entry races it; never allocates, never sleeps.
    /// </summary>
    internal bool TryLookup(ushort asid, ulong vpn, out ulong pte)
    {
        int found = _hitView.Find(Tag(asid, vpn), vpn, out pte);
        if (found < 0)
            pte = LookupLocked(SetOfVpn(vpn), Tag(asid, vpn));
        if (pte != 0)
        {
            _hits++;
            return true;
        }
        _misses++;
        return false;
    }

    /// <summary>
    /// The hit path's lookup (<see cref="HitView.Find"/>): the entries and the set geometry, fixed when the TLB is built.
    /// It takes no lock and counts nothing: the caller counts the hit in its use (<see cref="InFlightUses.Slot.Hits"/>),
    /// which the use's end adds to <see cref="TlbStats.Hits"/>; on a miss or a raced read the caller looks the page up
    /// with <see cref="TryLookup"/>. An engine's <see cref="DeviceMmu"/> keeps a copy, so that its inlined hit reads the
    /// geometry from itself rather than through the TLB.
    /// </summary>
    internal HitView HitPath => _hitView;

    /// <summary>
    /// Installs page <paramref name="vpn"/> of <paramref name="asid"/> as <paramref name="pte"/> (a 4 KiB leaf) unless an
    /// invalidation ran since the caller read <paramref name="sequence"/> before its walk. Takes the TLB's lock; never
    /// sleeps.
    /// </summary>
    internal bool Fill(ushort asid, ulong vpn, ulong pte, long sequence)
    {
        int set = SetOfVpn(vpn);
        ulong tag = Tag(asid, vpn);
        lock (_lock)
        {
            if (_sequence != sequence)
            {
                _fillsDiscarded++;
                return false;
            }
            int way = FindWay(set, tag);
            if (way < 0)
                way = FindWay(set, Empty);
            if (way < 0)
            {
                way = _victims[set];
                _victims[set] = way + 1 == _ways ? 0 : way + 1;
                _evictions++;
            }
            ref var e = ref _entries[(set << _strideShift) + way];
            // Tag cleared before the leaf changes and set after it: see the class remarks.
            Volatile.Write(ref e.Tag, Empty);
            Volatile.Write(ref e.Pte, pte);
            Volatile.Write(ref e.Tag, tag);
            _fills++;
            return true;
        }
    }

    /// <summary>Counts a walk started on a miss and whether it faulted.</summary>
    internal void CountWalk(bool faulted)
    {
        Interlocked.Increment(ref _walks);
        if (faulted)
            Interlocked.Increment(ref _walkFaults);
    }

    private TlbInvalidation Invalidate(InvalidationKind kind, ushort asid, ulong firstVpn, ulong lastVpn)
    {
        int dropped = 0;
        lock (_lock)
        {
            // Under the lock with the removal: a fill that walked before this point sees the new sequence and
            // discards what it read, and every page-walk cache entry (tagged with an older sequence) stops matching.
            _sequence++;
            if (firstVpn <= MaxVpn)
            {
                if (kind == InvalidationKind.Range && lastVpn - firstVpn < (ulong)(_setMask + 1))
                {
                    for (ulong vpn = firstVpn; vpn <= lastVpn; vpn++)
                        dropped += DropInSet(SetOfVpn(vpn), kind, asid, vpn, vpn);
                }
                else
                {
                    for (int set = 0; set <= _setMask; set++)
                        dropped += DropInSet(set, kind, asid, firstVpn, lastVpn);
                }
            }
            _invalidations++;
            _entriesDropped += dropped;
        }
        // The removal must be visible before we read which uses touched the pages (pairs with the fence a use
        // executes after publishing a touch and before its lookup).
        Interlocked.MemoryBarrier();
        _uses.Collect(kind, asid, firstVpn, lastVpn, out int[] slots, out long[] generations);
        if (slots.Length != 0)
            Interlocked.Increment(ref _invalidationWaits);
        _scheduler.Trace.Record(s_invalidateEvent, ((ulong)kind << AsidBits) | asid, firstVpn, lastVpn);
        return new TlbInvalidation(_uses, kind, asid, firstVpn, lastVpn, dropped, slots, generations);
    }

    // Caller holds _lock.
    private int DropInSet(int set, InvalidationKind kind, ushort asid, ulong firstVpn, ulong lastVpn)
    {
        Debug.Assert(_lock.IsHeldByCurrentThread);
        int b = set << _strideShift;
        int dropped = 0;
        for (int w = 0; w < _ways; w++)
        {
            ref var e = ref _entries[b + w];
            ulong tag = e.Tag;
            if (tag == Empty)
                continue;
            if (kind != InvalidationKind.All)
            {
                if (tag >> AsidShift != asid)
                    continue;
                ulong vpn = tag & VpnMask;
                if (kind == InvalidationKind.Range && (vpn < firstVpn || vpn > lastVpn))
                    continue;
            }
            Volatile.Write(ref e.Tag, Empty);
            Volatile.Write(ref e.Pte, 0);
            dropped++;
        }
        return dropped;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong LookupLocked(int set, ulong tag)
    {
        lock (_lock)
        {
            int way = FindWay(set, tag);
            return way < 0 ? 0 : _entries[(set << _strideShift) + way].Pte;
        }
    }

    // Caller holds _lock.
    private int FindWay(int set, ulong tag)
    {
        int b = set << _strideShift;
        for (int w = 0; w < _ways; w++)
        {
            if (_entries[b + w].Tag == tag)
                return w;
        }
        return -1;
    }

    private int SetOfVpn(ulong vpn) => (int)vpn & _setMask;

    private static ulong Tag(ushort asid, ulong vpn) => ((ulong)asid << AsidShift) | (vpn & VpnMask);

    /// <summary>One cached translation: the tag (asid, page number; <see cref="Empty"/> when empty) and the 4 KiB leaf.</summary>
    internal struct Entry
    {
        public ulong Tag;
        public ulong Pte;
    }

    /// <summary>
    /// The entries array and the set geometry, as the lock-free lookup (<see cref="Find"/>) reads them. Immutable.
    /// </summary>
    internal readonly struct HitView(Entry[] entries, int setByteShift, ulong setByteMask, int ways)
    {
        private readonly Entry[] _entries = entries;
        private readonly int _setByteShift = setByteShift;
        private readonly ulong _setByteMask = setByteMask;
        private readonly int _ways = ways;

        /// <summary>
        /// Finds <paramref name="tag"/> (that of page <paramref name="vpn"/>) without a lock: 1 when found
        /// (<paramref name="pte"/> is its leaf), 0 when absent, -1 when the entry changed while it was read. The first
        /// way is compared before the way count is read. Counts nothing, never allocates.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Find(ulong tag, ulong vpn, out ulong pte)
        {
            Debug.Assert(vpn <= MaxVpn && Unsafe.SizeOf<Entry>() == 16);
            // In bounds: the offset is that of a set (at most the set mask), whose ways are the _ways entries from there on.
            ref var way = ref Unsafe.AddByteOffset(ref MemoryMarshal.GetArrayDataReference(_entries),
                (nint)((vpn << _setByteShift) & _setByteMask));
            if (Volatile.Read(ref way.Tag) != tag)
            {
                int w = _ways;
                do
                {
                    if (--w == 0)
                    {
                        pte = 0;
                        return 0;
                    }
                    way = ref Unsafe.Add(ref way, 1);
                }
                while (Volatile.Read(ref way.Tag) != tag);
            }
            pte = Volatile.Read(ref way.Pte);
            return Volatile.Read(ref way.Tag) == tag ? 1 : -1;
        }
    }
}
