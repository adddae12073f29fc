using System.Diagnostics;
using HmmEmu.Hardware.Memory;

namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// A page-walk cache (x86's paging-structure cache, the SMMU's walk cache): for a few (asid, 2 MiB region) pairs, the
/// level-1 table the last walk in that region reached, so the next TLB miss there reads one entry instead of four.
/// One per engine, owned by its <see cref="DeviceTlb"/>.
/// </summary>
/// <remarks>
/// <para>
/// Invalidation: each entry carries the TLB's invalidation sequence read before the walk that found it, and a lookup
/// matches only an entry whose sequence is the current one. So every TLB invalidation (page, range, asid or all)
/// drops every entry at once without touching them, including an entry filled by a walk that an invalidation raced.
/// </para>
/// <para>
/// Layout and replacement: <see cref="Capacity"/> slots, fully associative. A fill goes to the slot already holding the
/// region, else the first empty or stale slot, else the round-robin victim (which then advances): deterministic.
/// </para>
/// <para>
/// Concurrency: fills take the cache's lock and publish a slot as a seqlock (version odd while the slot changes); a
/// lookup reads the version, the fields and the version again, and treats a slot that changed under it as absent, so
/// it never uses a torn entry. Neither side allocates. Hits and misses are counted exactly.
/// </para>
/// </remarks>
internal sealed class PageWalkCache
{
    /// <summary>The most slots a cache may have.</summary>
    public const int MaxCapacity = 64;

    private const ulong TagValid = 1UL << 63;
    private const int AsidBits = 16;
    private const ulong VramBit = 1;

    private readonly Slot[] _slots;
    private readonly Lock _lock = new();
    private int _victim;
    private long _hits;
    private long _misses;

    /// <summary>Creates an empty cache of <paramref name="capacity"/> slots (0 disables it: every lookup misses uncounted).</summary>
    public PageWalkCache(int capacity)
    {
        if (capacity is < 0 or > MaxCapacity)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity,
                $"A page-walk cache has from 0 (none) to {MaxCapacity} entries.");
        }
        _slots = new Slot[capacity];
    }

    /// <summary>How many level-1 tables the cache holds at most.</summary>
    public int Capacity => _slots.Length;

    /// <summary>Lookups that found their region's table under the current sequence.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Lookups that did not (never cached, replaced, or dropped by an invalidation).</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>
    /// Finds the level-1 table of <paramref name="region"/> (a virtual address shifted right by 21) of
    /// <paramref name="asid"/> cached under invalidation sequence <paramref name="sequence"/>, and counts a hit or a
    /// miss. Lock-free; never allocates, never sleeps.
    /// </summary>
    public bool TryLookup(ushort asid, ulong region, long sequence, out LeafTablePointer leafTable)
    {
        if (_slots.Length != 0)
        {
            ulong tag = Tag(asid, region);
            for (int i = 0; i < _slots.Length; i++)
            {
                ref var s = ref _slots[i];
                int before = Volatile.Read(ref s.Version);
                if (Volatile.Read(ref s.Tag) != tag)
                    continue;
                long filledAt = Volatile.Read(ref s.Sequence);
                ulong entry = Volatile.Read(ref s.Entry);
                ulong where = Volatile.Read(ref s.Where);
                // Changing under us, or filled before an invalidation: as good as absent.
                if ((before & 1) != 0 || Volatile.Read(ref s.Version) != before || filledAt != sequence)
                    continue;
                leafTable = new LeafTablePointer(new DevicePte(entry),
                    (where & VramBit) != 0 ? Aperture.Vram : Aperture.System, where & ~VramBit);
                Interlocked.Increment(ref _hits);
                return true;
            }
            Interlocked.Increment(ref _misses);
        }
        leafTable = default;
        return false;
    }

    /// <summary>
    /// Remembers <paramref name="leafTable"/> for <paramref name="region"/> of <paramref name="asid"/>, found by a walk
    /// that read invalidation sequence <paramref name="sequence"/> before it started. Takes the cache's lock; never
    /// sleeps, never allocates.
    /// </summary>
    public void Fill(ushort asid, ulong region, in LeafTablePointer leafTable, long sequence)
    {
        Debug.Assert(leafTable.Entry.IsTable, "only a level-2 table pointer names a level-1 table");
        Debug.Assert((leafTable.EntryAddress & (DevicePageTable.EntrySize - 1)) == 0, "entries are 8-byte aligned");
        if (_slots.Length == 0)
            return;
        ulong tag = Tag(asid, region);
        lock (_lock)
        {
            int slot = Find(tag, sequence);
            if (slot < 0)
            {
                slot = _victim;
                _victim = slot + 1 == _slots.Length ? 0 : slot + 1;
            }
            ref var s = ref _slots[slot];
            Interlocked.Increment(ref s.Version);      // odd; the full fence orders it before the field stores
            s.Tag = tag;
            s.Sequence = sequence;
            s.Entry = leafTable.Entry.Value;
            s.Where = leafTable.EntryAddress | (leafTable.EntryAperture == Aperture.Vram ? VramBit : 0);
            Volatile.Write(ref s.Version, s.Version + 1);   // even; the release orders the field stores before it
        }
    }

    /// <summary>
    /// Checks that no slot is left mid-change and no region is cached twice under one sequence. For tests; call it
    /// when no thread is translating.
    /// </summary>
    public void AssertInvariants(string name)
    {
        lock (_lock)
        {
            if ((uint)_victim > (uint)Math.Max(0, _slots.Length - 1))
                throw new InvalidOperationException($"{name}: page-walk cache victim {_victim} of {_slots.Length}.");
            for (int i = 0; i < _slots.Length; i++)
            {
                ref var s = ref _slots[i];
                if ((s.Version & 1) != 0)
                    throw new InvalidOperationException($"{name}: page-walk cache slot {i} is left mid-change.");
                if (s.Tag == 0)
                    continue;
                if (!new DevicePte(s.Entry).IsTable)
                    throw new InvalidOperationException($"{name}: page-walk cache slot {i} holds 0x{s.Entry:x}, not a table pointer.");
                for (int o = i + 1; o < _slots.Length; o++)
                {
                    if (_slots[o].Tag == s.Tag && _slots[o].Sequence == s.Sequence)
                        throw new InvalidOperationException($"{name}: page-walk cache slots {i} and {o} hold the same region.");
                }
            }
        }
    }

    // Caller holds _lock. The slot holding the region, else the first empty one or one filled under another sequence.
    private int Find(ulong tag, long sequence)
    {
        Debug.Assert(_lock.IsHeldByCurrentThread);
        int free = -1;
        for (int i = 0; i < _slots.Length; i++)
        {
            ref readonly var s = ref _slots[i];
            if (s.Tag == tag)
                return i;
            if (free < 0 && (s.Tag == 0 || s.Sequence != sequence))
                free = i;
        }
        return free;
    }

    private static ulong Tag(ushort asid, ulong region) => TagValid | (region << AsidBits) | asid;

    /// <summary>One cached table: seqlock version, tag (valid bit, region, asid; 0 when empty), fill sequence, level-2 entry, where it was read (address | 1 for VRAM).</summary>
    private struct Slot
    {
        public int Version;
        public ulong Tag;
        public long Sequence;
        public ulong Entry;
        public ulong Where;
    }
}
