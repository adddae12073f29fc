namespace HmmEmu.Kernel.Vm;

/// <summary>
/// The 4-level, 512-ary CPU page table of one address space (pgd → pud → pmd → pte). Upper levels are managed
/// arrays allocated on demand; a walk is three array loads. Tables are populated and freed under the address
/// space's page-table lock and read locklessly; a detached table stays valid for a racing lockless reader (the
/// garbage collector plays the part of RCU), and every entry in it is none by the time it is detached.
/// </summary>
internal sealed class CpuPageTable
{
    private const int Bits = 9;
    private const int Fanout = 1 << Bits;
    private const int PteShift = 12;
    private const int PmdShift = PteShift + Bits;   // 21: one pte table spans 2 MiB
    private const int PudShift = PmdShift + Bits;   // 30
    private const int PgdShift = PudShift + Bits;   // 39

    private readonly Upper _pgd = new();
    private long _tables;

    private sealed class Upper
    {
        public readonly object?[] Slots = new object?[Fanout];
        public int Used;
    }

    /// <summary>Bytes one last-level table maps.</summary>
    public const ulong TableSpan = 1UL << PmdShift;

    /// <summary>How many last-level tables exist.</summary>
    public long TableCount => Interlocked.Read(ref _tables);

    /// <summary>The index of <paramref name="addr"/> inside its last-level table.</summary>
    public static int PteIndex(ulong addr) => (int)((addr >> PteShift) & (Fanout - 1));

    /// <summary>Reads the entry for <paramref name="addr"/> without locks; none when no table covers it.</summary>
    public Pte Get(ulong addr)
    {
        var t = Find(addr, out _);
        return t is null ? Pte.None : t.Get(PteIndex(addr));
    }

    /// <summary>
    /// Finds the last-level table covering <paramref name="addr"/> without locks. When there is none,
    /// <paramref name="skipTo"/> is the first address past the empty region found (to skip holes quickly).
    /// </summary>
    public PteTable? Find(ulong addr, out ulong skipTo)
    {
        if (Volatile.Read(ref _pgd.Slots[Index(addr, PgdShift)]) is not Upper pud)
        {
            skipTo = NextBoundary(addr, PgdShift);
            return null;
        }
        if (Volatile.Read(ref pud.Slots[Index(addr, PudShift)]) is not Upper pmd)
        {
            skipTo = NextBoundary(addr, PudShift);
            return null;
        }
        if (Volatile.Read(ref pmd.Slots[Index(addr, PmdShift)]) is not PteTable pte)
        {
            skipTo = NextBoundary(addr, PmdShift);
            return null;
        }
        skipTo = NextBoundary(addr, PmdShift);
        return pte;
    }

    /// <summary>Returns the table covering <paramref name="addr"/>, creating missing levels (pte_alloc). Caller holds the page-table lock.</summary>
    public PteTable Ensure(ulong addr)
    {
        var pud = EnsureUpper(_pgd, Index(addr, PgdShift));
        var pmd = EnsureUpper(pud, Index(addr, PudShift));
        int i = Index(addr, PmdShift);
        if (pmd.Slots[i] is PteTable existing)
            return existing;
        var table = new PteTable();
        Volatile.Write(ref pmd.Slots[i], table);
        pmd.Used++;
        Interlocked.Increment(ref _tables);
        return table;
    }

    /// <summary>
    /// Detaches every empty last-level table lying wholly inside [<paramref name="start"/>, <paramref name="end"/>)
    /// and any upper level left empty (free_pgtables). Caller holds the page-table lock.
    /// </summary>
    public void FreeEmptyTables(ulong start, ulong end)
    {
        ulong first = (start + TableSpan - 1) & ~(TableSpan - 1);
        for (ulong addr = first; addr < end && end - addr >= TableSpan;)
        {
            if (Find(addr, out ulong skip) is { Used: 0 })
                Detach(addr);
            addr = skip > addr ? skip : ulong.MaxValue;
        }
    }

    private void Detach(ulong addr)
    {
        var pud = (Upper)_pgd.Slots[Index(addr, PgdShift)]!;
        var pmd = (Upper)pud.Slots[Index(addr, PudShift)]!;
        Volatile.Write(ref pmd.Slots[Index(addr, PmdShift)], null);
        Interlocked.Decrement(ref _tables);
        if (--pmd.Used > 0)
            return;
        Volatile.Write(ref pud.Slots[Index(addr, PudShift)], null);
        if (--pud.Used > 0)
            return;
        Volatile.Write(ref _pgd.Slots[Index(addr, PgdShift)], null);
        _pgd.Used--;
    }

    private static Upper EnsureUpper(Upper parent, int index)
    {
        if (parent.Slots[index] is Upper existing)
            return existing;
        var created = new Upper();
        Volatile.Write(ref parent.Slots[index], created);
        parent.Used++;
        return created;
    }

    private static int Index(ulong addr, int shift) => (int)((addr >> shift) & (Fanout - 1));

    private static ulong NextBoundary(ulong addr, int shift)
    {
        ulong next = (addr | ((1UL << shift) - 1)) + 1;
        return next == 0 ? ulong.MaxValue : next;
    }
}
