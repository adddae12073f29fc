using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// The fixed pool of in-flight translation uses of one TLB, and for each use the (address-space id, page range)s
/// it translated, so that an invalidation waits exactly for the uses that may hold a stale translation.
/// </summary>
/// <remarks>
/// <para>
/// A use records up to <see cref="RangesPerUse"/> page ranges. A page next to a range extends it; when all ranges are
/// taken, the closest range of the same id is widened over the gap, and a use that touches more ids than it has
/// ranges is marked as touching everything. Records only ever grow while the use lives, so an invalidation that
/// reads them while they change sees at least everything published before it.
/// </para>
/// <para>
/// Ordering (the Dekker pair that makes the ATS rule hold without a lock on the hit path): a use publishes a new or
/// wider record and then executes a full fence before it looks the page up in the TLB; an invalidation removes the
/// entries, executes a full fence, and then scans the records. So either the lookup misses (and walks the new table),
/// or the invalidation sees the record and waits for the use to end.
/// </para>
/// <para>
/// Each slot's generation changes only when its use ends; an invalidation waits on (slot, generation) pairs.
/// </para>
/// </remarks>
internal sealed class InFlightUses
{
    /// <summary>How many page ranges one use records before it widens them.</summary>
    public const int RangesPerUse = 4;

    // Where the id sits in Slot.FastBase, above every page number (a page number has 36 bits, an id 16).
    private const int FastAsidShift = 48;

    /// <summary>
    /// Pages recorded at once when a use's range grows by one page at its top: up to the end of that page's group of
    /// 64 (256 KiB, aligned), so a forward run pays one fence per group (docs/hardware.md, "Completion").
    /// </summary>
    internal const ulong ForwardGroupPages = 64;

    private readonly Slot[] _slots;
    private readonly ulong[] _free;
    private readonly SimWaitQueue _queue;
    private readonly string _name;
    private int _slotWaiters;
    private int _active;
    private long _endedHits;

    /// <summary>Creates <paramref name="count"/> free slots (numbered 1 to <paramref name="count"/>; 0 means untracked).</summary>
    public InFlightUses(int count, SimWaitQueue queue, string name)
    {
        _slots = new Slot[count + 1];
        foreach (ref var s in _slots.AsSpan())
            s.ClearFast();
        _free = new ulong[(count + 63) / 64];
        for (int i = 0; i < count; i++)
            _free[i >> 6] |= 1UL << (i & 63);
        _queue = queue;
        _name = name;
    }

    /// <summary>Number of slots.</summary>
    public int Count => _slots.Length - 1;

    /// <summary>
    /// The slots, index 0 unused (untracked). For the translation hit path only, which reads a slot's records through
    /// <see cref="Covers"/>: an ended use has none, so it falls through to <see cref="Live"/>.
    /// </summary>
    public Slot[] Slots => _slots;

    /// <summary>Uses begun and not yet ended.</summary>
    public int Active => Volatile.Read(ref _active);

    /// <summary>
    /// TLB hits counted on the translation hit path: those of ended uses plus those of live uses so far (exact when no
    /// use translates meanwhile, as in deterministic mode).
    /// </summary>
    public long Hits
    {
        get
        {
            long hits = Volatile.Read(ref _endedHits);
            for (int i = 1; i < _slots.Length; i++)
                hits += Volatile.Read(ref _slots[i].Hits);
            return hits;
        }
    }

    /// <summary>The wait queue for free slots and for invalidation tickets.</summary>
    public SimWaitQueue Queue => _queue;

    /// <summary>Takes a free slot, waiting for one if every slot is busy. May sleep (only when the pool is exhausted).</summary>
    public int Begin()
    {
        while (true)
        {
            if (TryTake(out int slot))
            {
                Volatile.Write(ref _slots[slot].Busy, 1);
                Interlocked.Increment(ref _active);
                return slot;
            }
            // Pairs with the fence in End: either End sees us waiting, or we see its freed slot.
            Interlocked.Increment(ref _slotWaiters);
            try
            {
                _queue.WaitUntil(this, static u => u.HasFreeSlot());
            }
            finally
            {
                Interlocked.Decrement(ref _slotWaiters);
            }
        }
    }

    /// <summary>Ends the use in <paramref name="slot"/>: tickets waiting on it may complete. Never sleeps.</summary>
    public void End(int slot)
    {
        CheckSlotIndex(slot, "EndUse");
        ref var s = ref _slots[slot];
        if (Interlocked.Exchange(ref s.Busy, 0) == 0)
            ThrowNotBusy(slot, "EndUse");
        s.Overflow = 0;
        s.Count = 0;
        s.ClearFast();
        // Added before the slot is zeroed: a reader may count these hits twice for a moment, never miss them.
        Interlocked.Add(ref _endedHits, s.Hits);
        Volatile.Write(ref s.Hits, 0);
        Interlocked.Increment(ref s.Generation);
        Interlocked.Decrement(ref _active);
        int i = slot - 1;
        Interlocked.Or(ref _free[i >> 6], 1UL << (i & 63));
        bool wake = Interlocked.Exchange(ref s.Waited, 0) != 0;
        if (wake || Volatile.Read(ref _slotWaiters) != 0)
            _queue.WakeAll();
    }

    /// <summary>
    /// The slot of a use that has begun and not ended; throws for anything else (misuse). Never sleeps.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref Slot Live(int slot)
    {
        if ((uint)(slot - 1) >= (uint)(_slots.Length - 1))
            ThrowBadUse(slot);
        // In bounds: checked just above.
        ref var s = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), slot);
        if (s.Busy == 0)
            ThrowBadUse(slot);
        return ref s;
    }

    /// <summary>
    /// Records that the use in <paramref name="s"/> translates page <paramref name="vpn"/> of
    /// <paramref name="asid"/>; after it returns, an invalidation of that page waits for the use. Owner thread only.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Touch(ref Slot s, ushort asid, ulong vpn)
    {
        if (!Covers(ref s, Key(asid, vpn)))
            TouchOther(ref s, asid, vpn);
    }

    /// <summary>
    /// Whether the page of <paramref name="key"/> (<see cref="Key"/>) lies in the first range the use in
    /// <paramref name="s"/> recorded (the common case: one engine, one address space, one run of pages), so that a
    /// touch of it has nothing to publish. One subtraction and one comparison, from the slot's copy of that range
    /// (<see cref="Slot.FastBase"/>, <see cref="Slot.FastSpan"/>). Owner thread only.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Covers(ref Slot s, ulong key) => key - s.FastBase <= s.FastSpan;

    /// <summary>
    /// The last page of the range recorded in <paramref name="s"/> that holds page <paramref name="vpn"/> of
    /// <paramref name="asid"/>, if one does: an invalidation of any page up to it waits for the use. Owner thread only.
    /// </summary>
    public static bool TryGetRecordedEnd(ref Slot s, ushort asid, ulong vpn, out ulong lastVpn)
    {
        int n = s.Count;
        for (int k = 0; k < n; k++)
        {
            ref var r = ref s.Ranges[k];
            if (r.Asid == asid && vpn - r.Lo <= r.Hi - r.Lo)
            {
                lastVpn = r.Hi;
                return true;
            }
        }
        lastVpn = 0;
        return false;
    }

    /// <summary>
    /// The key of page <paramref name="vpn"/> (below 2^36) of <paramref name="asid"/>: (asid &lt;&lt; 48) | page, which is
    /// also the TLB's tag for it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Key(ushort asid, ulong vpn) => ((ulong)asid << FastAsidShift) | vpn;

    /// <summary>The generation of <paramref name="slot"/> (changes when its use ends).</summary>
    public long Generation(int slot) => Volatile.Read(ref _slots[slot].Generation);

    /// <summary>
    /// Finds the live uses whose records overlap the invalidation and marks them waited on. The caller has already
    /// removed the TLB entries and executed a full fence.
    /// </summary>
    /// <param name="kind">What the invalidation covers.</param>
    /// <param name="asid">The id (Range and Asid kinds).</param>
    /// <param name="firstVpn">First page (Range kind).</param>
    /// <param name="lastVpn">Last page, inclusive (Range kind).</param>
    /// <param name="slots">Receives the slots to wait for.</param>
    /// <param name="generations">Receives their generations.</param>
    public void Collect(InvalidationKind kind, ushort asid, ulong firstVpn, ulong lastVpn,
        out int[] slots, out long[] generations)
    {
        List<int>? slotList = null;
        List<long>? generationList = null;
        for (int i = 1; i < _slots.Length; i++)
        {
            ref var s = ref _slots[i];
            if (Volatile.Read(ref s.Busy) == 0)
                continue;
            long g = Volatile.Read(ref s.Generation);
            bool hit = Volatile.Read(ref s.Overflow) != 0 || Matches(ref s, kind, asid, firstVpn, lastVpn);
            if (!hit || Volatile.Read(ref s.Generation) != g)
                continue;       // no overlap, or the use we looked at has ended meanwhile
            // Raise the flag after reading the generation: End bumps the generation and then clears the flag, so
            // either End sees the flag and wakes the ticket's waiters, or the ticket sees the new generation.
            Interlocked.Exchange(ref s.Waited, 1);
            (slotList ??= []).Add(i);
            (generationList ??= []).Add(g);
        }
        slots = slotList is null ? [] : [.. slotList];
        generations = generationList is null ? [] : [.. generationList];
    }

    /// <summary>Checks the pool's bookkeeping; for tests. Caller makes sure no use begins or ends meanwhile.</summary>
    public void AssertInvariants()
    {
        int busy = 0;
        for (int i = 1; i < _slots.Length; i++)
        {
            bool free = (Volatile.Read(ref _free[(i - 1) >> 6]) & (1UL << ((i - 1) & 63))) != 0;
            bool isBusy = _slots[i].Busy != 0;
            if (free == isBusy)
                throw new InvalidOperationException($"{_name}: use slot {i} is {(isBusy ? "busy" : "idle")} but {(free ? "free" : "taken")} in the pool.");
            if (isBusy)
                busy++;
            else if (_slots[i].Count != 0 || _slots[i].Overflow != 0 || _slots[i].FastSpan != 0 || _slots[i].FastBase != ulong.MaxValue)
                throw new InvalidOperationException($"{_name}: idle use slot {i} still has touch records.");
        }
        if (busy != Active)
            throw new InvalidOperationException($"{_name}: {busy} busy slots but {Active} active uses.");
    }

    private static bool Matches(ref Slot s, InvalidationKind kind, ushort asid, ulong firstVpn, ulong lastVpn)
    {
        int n = Volatile.Read(ref s.Count);
        if (n == 0)
            return false;
        if (kind == InvalidationKind.All)
            return true;
        for (int k = 0; k < n; k++)
        {
            ref var r = ref s.Ranges[k];
            if (Volatile.Read(ref r.Asid) != asid)
                continue;
            if (kind == InvalidationKind.Asid)
                return true;
            if (Volatile.Read(ref r.Lo) <= lastVpn && Volatile.Read(ref r.Hi) >= firstVpn)
                return true;
        }
        return false;
    }

    private static void TouchOther(ref Slot s, ushort asid, ulong vpn)
    {
        Record(ref s, asid, vpn);
        if (s.Count != 0)
        {
            ref var r = ref s.Ranges[0];
            s.FastBase = ((ulong)(uint)r.Asid << FastAsidShift) | r.Lo;
            s.FastSpan = r.Hi - r.Lo;
        }
    }

    private static void Record(ref Slot s, ushort asid, ulong vpn)
    {
        int n = s.Count;
        for (int k = 1; k < n; k++)
        {
            ref var other = ref s.Ranges[k];
            if (other.Asid == asid && vpn - other.Lo <= other.Hi - other.Lo)
                return;
        }
        if (s.Overflow != 0)
            return;
        // Extend a neighbouring range of the same id.
        for (int k = 0; k < n; k++)
        {
            ref var r = ref s.Ranges[k];
            if (r.Asid != asid)
                continue;
            if (vpn == r.Hi + 1)
            {
                // A use walking forward (a DMA, a kernel's span) goes on to the next pages: record up to the end of the
                // 64-page group at once, so the fence is paid once per 256 KiB rather than per page. Recording pages
                // not yet touched only makes an invalidation of them wait for this use, never the reverse.
                Volatile.Write(ref r.Hi, vpn | (ForwardGroupPages - 1));
                Interlocked.MemoryBarrier();
                return;
            }
            if (vpn + 1 == r.Lo)
            {
                Volatile.Write(ref r.Lo, vpn);
                Interlocked.MemoryBarrier();
                return;
            }
        }
        if (n < RangesPerUse)
        {
            ref var r = ref s.Ranges[n];
            r.Asid = asid;
            r.Lo = vpn;
            r.Hi = vpn;
            Volatile.Write(ref s.Count, n + 1);
            Interlocked.MemoryBarrier();
            return;
        }
        // Out of ranges: widen the closest range of the same id over the gap, or give up and cover everything.
        int best = -1;
        ulong bestGap = ulong.MaxValue;
        for (int k = 0; k < n; k++)
        {
            ref var r = ref s.Ranges[k];
            if (r.Asid != asid)
                continue;
            ulong gap = vpn < r.Lo ? r.Lo - vpn : vpn - r.Hi;
            if (gap < bestGap)
            {
                bestGap = gap;
                best = k;
            }
        }
        if (best < 0)
        {
            Volatile.Write(ref s.Overflow, 1);
        }
        else
        {
            ref var r = ref s.Ranges[best];
            if (vpn < r.Lo)
                Volatile.Write(ref r.Lo, vpn);
            else
                Volatile.Write(ref r.Hi, vpn);
        }
        Interlocked.MemoryBarrier();
    }

    private bool HasFreeSlot()
    {
        for (int w = 0; w < _free.Length; w++)
        {
            if (Volatile.Read(ref _free[w]) != 0)
                return true;
        }
        return false;
    }

    private bool TryTake(out int slot)
    {
        for (int w = 0; w < _free.Length; w++)
        {
            while (true)
            {
                ulong v = Volatile.Read(ref _free[w]);
                if (v == 0)
                    break;
                int bit = BitOperations.TrailingZeroCount(v);
                if (Interlocked.CompareExchange(ref _free[w], v & ~(1UL << bit), v) == v)
                {
                    slot = (w << 6) + bit + 1;
                    return true;
                }
            }
        }
        slot = 0;
        return false;
    }

    private void CheckSlotIndex(int slot, string what)
    {
        if ((uint)(slot - 1) >= (uint)(_slots.Length - 1))
            ThrowBadUse(slot, what);
    }

    private void ThrowBadUse(int slot, string what = "Translate")
    {
        if (slot == 0)
        {
            throw new InvalidOperationException(
                $"{_name}: {what} was given an untracked TranslationUse. A DeviceMmu covers translations with " +
                "invalidations only inside a use: call BeginUse first and pass the use it returns.");
        }
        if ((uint)(slot - 1) >= (uint)(_slots.Length - 1))
        {
            throw new InvalidOperationException(
                $"{_name}: {what} was given TranslationUse slot {slot}, which this MMU never handed out (it has " +
                $"{_slots.Length - 1} slots). Pass the use returned by this MMU's BeginUse.");
        }
        ThrowNotBusy(slot, what);
    }

    private void ThrowNotBusy(int slot, string what) =>
        throw new InvalidOperationException(
            $"{_name}: {what} was given TranslationUse slot {slot}, which has already ended. A use is valid from " +
            "BeginUse to its one EndUse; begin a new use for further translations.");

    /// <summary>One recorded range of pages of one address space.</summary>
    internal struct TouchedRange
    {
        public ulong Lo;
        public ulong Hi;
        public int Asid;
    }

    /// <summary>The recorded ranges of one use.</summary>
    [InlineArray(RangesPerUse)]
    internal struct RangeBuffer
    {
        private TouchedRange _element;
    }

    /// <summary>
    /// One use slot. Busy, Count, Overflow, Ranges, Hits and the Fast fields are written only by the use's thread.
    /// Padded to 256 bytes (144 used): the hit path finds a slot with a shift rather than a multiplication, and two
    /// slots' owners never write the same cache line.
    /// </summary>
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    internal struct Slot
    {
        /// <summary>TLB hits of this use on the hit path, added to the pool's total when the use ends.</summary>
        public long Hits;

        /// <summary>
        /// The first range as one key interval for <see cref="Covers"/>: (asid &lt;&lt; 48 | page) lies in it when
        /// key − FastBase ≤ FastSpan. Owner thread only; nobody else reads them.
        /// </summary>
        public ulong FastBase;
        public ulong FastSpan;
        public int Busy;
        public int Waited;
        public int Count;
        public int Overflow;
        public long Generation;
        public RangeBuffer Ranges;

        /// <summary>Makes <see cref="Covers"/> false for every key: key − ulong.MaxValue = key + 1 is never 0.</summary>
        public void ClearFast()
        {
            FastBase = ulong.MaxValue;
            FastSpan = 0;
        }
    }
}
