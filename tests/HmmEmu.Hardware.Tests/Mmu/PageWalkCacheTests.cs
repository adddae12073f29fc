using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;
using HmmEmu.Kernel.Locking;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Mmu;

/// <summary>
/// The page-walk cache: a TLB miss in a 2 MiB region whose level-1 table a walk just reached reads one entry, reports
/// exactly what a full walk would, and never uses a table from before a TLB invalidation.
/// </summary>
public sealed class PageWalkCacheTests
{
    private const ushort A = 1;
    private const ushort B = 2;
    private const ulong Page = 4096;
    private const ulong Region = 2UL << 20;
    private const ulong Va = (1UL << 39) | (2UL << 30) | (3UL << 21);   // 2 MiB aligned; pages Va + n × 4 KiB share a level-1 table

    public static TheoryData<string> Invalidations => new() { "page", "range", "asid", "all" };

    private static TranslationResult TranslateOnce(DeviceMmu mmu, ushort asid, ulong va, Access access = Access.Read)
    {
        var use = mmu.BeginUse();
        try
        {
            return mmu.Translate(use, asid, va, access);
        }
        finally
        {
            mmu.EndUse(use);
        }
    }

    private static (MmuTestMachine M, DeviceMmu Mmu) MachineWithPages(DeviceMmuOptions? options = null,
        Aperture tables = Aperture.System)
    {
        var m = new MmuTestMachine();
        m.CreateRoot(A, tables);
        m.CreateRoot(B, tables);
        for (ulong p = 0; p < 4; p++)
        {
            m.MapNewPage(A, Va + (p * Page));
            m.MapNewPage(B, Va + (p * Page));
            m.MapNewPage(A, Va + Region + (p * Page));
            m.MapNewPage(A, Va + (2 * Region) + (p * Page));
        }
        return (m, m.CreateMmu(options));
    }

    [Fact]
    public void Translate_SecondMissInSameRegion_ReadsOneEntryAndChargesOneLevel()
    {
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        Assert.True(TranslateOnce(mmu, A, Va).IsOk);
        ulong reads = (ulong)mmu.Walker.EntryReads;
        ulong before = m.Kernel.Clock.Now;

        var r = TranslateOnce(mmu, A, Va + Page);

        Assert.True(r.IsOk);
        Assert.Equal(1UL, (ulong)mmu.Walker.EntryReads - reads);
        Assert.Equal(before + PageTableWalker.DefaultLevelNs, m.Kernel.Clock.Now);
        var s = mmu.Stats;
        Assert.Equal((2L, 2L, 1L, 1L), (s.Misses, s.Walks, s.WalkCacheMisses, s.WalkCacheHits));
        mmu.Tlb.AssertInvariants();
    }

    [Fact]
    public void Translate_MissUnderCachedTable_ReturnsTheSamePageAsAFullWalk()
    {
        var (m, mmu) = MachineWithPages(tables: Aperture.Vram);
        using var _ = m;
        TranslateOnce(mmu, A, Va);

        var r = TranslateOnce(mmu, A, Va + (3 * Page) + 0x10, Access.Write);

        var full = mmu.Probe(A, Va + (3 * Page) + 0x10, Access.Write);
        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.System, full.Page.Address + 0x10, Page - 0x10), r);
        Assert.Equal(1, mmu.Stats.WalkCacheHits);
    }

    [Fact]
    public void Translate_MissInAnotherRegion_WalksFully()
    {
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        TranslateOnce(mmu, A, Va);

        TranslateOnce(mmu, A, Va + Region);

        Assert.Equal(8, mmu.Walker.EntryReads);
        Assert.Equal((0L, 2L), (mmu.Stats.WalkCacheHits, mmu.Stats.WalkCacheMisses));
    }

    [Fact]
    public void Translate_SameRegionOfAnotherAsid_WalksFully()
    {
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        TranslateOnce(mmu, A, Va);

        var r = TranslateOnce(mmu, B, Va + Page);

        Assert.Equal(8, mmu.Walker.EntryReads);
        Assert.Equal(mmu.Probe(B, Va + Page, Access.Read).Page.Address, r.Address);
    }

    [Fact]
    public void Translate_MoreRegionsThanEntries_ReplacesTheOldestFirst()
    {
        var (m, mmu) = MachineWithPages(new DeviceMmuOptions { WalkCacheEntries = 2 });
        using var _ = m;
        TranslateOnce(mmu, A, Va);
        TranslateOnce(mmu, A, Va + Region);
        TranslateOnce(mmu, A, Va + (2 * Region));       // replaces Va's table
        long reads = mmu.Walker.EntryReads;

        TranslateOnce(mmu, A, Va + Region + Page);       // still cached
        TranslateOnce(mmu, A, Va + Page);                // walked again

        Assert.Equal(1 + 4, mmu.Walker.EntryReads - reads);
        mmu.Tlb.AssertInvariants();
    }

    [Fact]
    public void Translate_CacheOff_EveryMissWalksFullyUncounted()
    {
        var (m, mmu) = MachineWithPages(new DeviceMmuOptions { WalkCacheEntries = 0 });
        using var _ = m;
        TranslateOnce(mmu, A, Va);

        TranslateOnce(mmu, A, Va + Page);

        Assert.Equal(8, mmu.Walker.EntryReads);
        Assert.Equal((0L, 0L), (mmu.Stats.WalkCacheHits, mmu.Stats.WalkCacheMisses));
    }

    [Theory]
    [MemberData(nameof(Invalidations))]
    public void Translate_AfterAnyInvalidation_WalksFully(string invalidation)
    {
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        TranslateOnce(mmu, A, Va);

        // None of them drops a TLB entry Va + Page needs (it was never cached), and the page one does not even
        // touch asid A: still every cached table goes.
        var ticket = invalidation switch
        {
            "page" => mmu.Tlb.InvalidatePage(B, Va + Region),
            "range" => mmu.Tlb.InvalidateRange(A, Va + (100 * Page), Va + (101 * Page)),
            "asid" => mmu.Tlb.InvalidateAsid(A),
            _ => mmu.Tlb.InvalidateAll(),
        };
        Assert.True(ticket.IsComplete);
        TranslateOnce(mmu, A, Va + Page);

        Assert.Equal(8, mmu.Walker.EntryReads);
        Assert.Equal((0L, 2L), (mmu.Stats.WalkCacheHits, mmu.Stats.WalkCacheMisses));
    }

    [Fact]
    public void Translate_AfterInvalidationThenWalk_CachesTheTableAgain()
    {
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        TranslateOnce(mmu, A, Va);
        mmu.Tlb.InvalidateRange(A, Va, Va + Region);
        TranslateOnce(mmu, A, Va + Page);

        TranslateOnce(mmu, A, Va + (2 * Page));

        Assert.Equal(4 + 4 + 1, mmu.Walker.EntryReads);
    }

    [Fact]
    public void Translate_TablePointerChangedWithoutInvalidation_StillUsesTheCachedTable()
    {
        // The other side of the next test: shows the cache is really used, so that test's pass means something.
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        ulong oldPage = mmu.Probe(A, Va + Page, Access.Read).Page.Address;
        TranslateOnce(mmu, A, Va);
        ulong newPage = ReplaceLeafTable(m, A, Va + Page);

        var r = TranslateOnce(mmu, A, Va + Page);

        Assert.NotEqual(newPage, oldPage);
        Assert.Equal(oldPage, r.Address);
    }

    [Fact]
    public void Translate_TablePointerChangedAndRegionInvalidated_UsesTheNewTable()
    {
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        TranslateOnce(mmu, A, Va);
        ulong newPage = ReplaceLeafTable(m, A, Va + Page);

        mmu.Tlb.InvalidateRange(A, Va, Va + Region);
        var r = TranslateOnce(mmu, A, Va + Page);

        Assert.Equal(newPage, r.Address);
    }

    [Fact]
    public void Translate_NotPresentLeafUnderCachedTable_FaultsAfterOneRead()
    {
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        TranslateOnce(mmu, A, Va);

        var r = TranslateOnce(mmu, A, Va + (9 * Page));

        Assert.Equal(TranslationStatus.NotPresent, r.Status);
        Assert.Equal(4 + 1, mmu.Walker.EntryReads);
        Assert.Equal((1L, 1L), (mmu.Stats.WalkCacheHits, mmu.Stats.WalkFaults));
        Assert.False(mmu.Tlb.Contains(A, Va + (9 * Page)));
    }

    [Fact]
    public void Translate_WriteToReadOnlyLeafUnderCachedTable_IsPermission()
    {
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        m.MapNewPage(A, Va + (5 * Page), PtePermissions.Read);
        TranslateOnce(mmu, A, Va);

        var r = TranslateOnce(mmu, A, Va + (5 * Page), Access.Write);

        Assert.Equal(TranslationStatus.Permission, r.Status);
        Assert.Equal(1, mmu.Stats.WalkCacheHits);
        Assert.True(TranslateOnce(mmu, A, Va + (5 * Page), Access.Read).IsOk);   // the leaf was cached in the TLB
    }

    [Fact]
    public void Probe_RegionCached_StillWalksFully()
    {
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        TranslateOnce(mmu, A, Va);

        var r = mmu.Probe(A, Va + (9 * Page), Access.Read);

        Assert.Equal((TranslationStatus.NotPresent, 1, 4), (r.Status, r.Level, r.Reads));
        Assert.Equal((0L, 1L), (mmu.Stats.WalkCacheHits, mmu.Stats.WalkCacheMisses));
    }

    public static TheoryData<string, Aperture> LeafCases
    {
        get
        {
            var data = new TheoryData<string, Aperture>();
            foreach (var tables in new[] { Aperture.System, Aperture.Vram })
            {
                foreach (var c in new[] { "ok", "not-present", "permission", "reserved-bit", "table-at-level-1", "leaf-outside-ram" })
                    data.Add(c, tables);
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(LeafCases))]
    public void WalkLeafTable_AnyLevel1Entry_ReportsWhatAFullWalkReportsWithOneRead(string leaf, Aperture tables)
    {
        var (m, _) = MachineWithPages(tables: tables);
        using var _ = m;
        ulong va = Va + (7 * Page) + 0x28;
        var access = leaf == "permission" ? Access.Write : Access.Read;
        ulong raw = leaf switch
        {
            "ok" => DevicePte.Leaf(Aperture.System, m.AllocPage(), PtePermissions.ReadWrite).Value,
            "not-present" => 0x5A0,                                                      // V clear, other bits ignored
            "permission" => DevicePte.Leaf(Aperture.System, m.AllocPage(), PtePermissions.Read).Value,
            "reserved-bit" => DevicePte.Leaf(Aperture.System, m.AllocPage(), PtePermissions.Read).Value | (1UL << 7),
            "table-at-level-1" => DevicePte.Table(Aperture.System, m.AllocPage()).Value,
            _ => DevicePte.Leaf(Aperture.System, 1UL << 40, PtePermissions.Read).Value,
        };
        m.WriteEntry(A, va, 1, raw);
        var walker = m.CreateWalker();
        walker.Walk(m.Roots[A], Va, Access.Read, out var leafTable);
        Assert.True(leafTable.IsValid);

        var full = walker.Walk(m.Roots[A], va, access);
        var cached = walker.WalkLeafTable(leafTable, va, access);

        Assert.Equal(4, full.Reads);
        Assert.Equal(full with { Reads = 1 }, cached);
    }

    [Fact]
    public void WalkLeafTable_TableOutsideRam_IsBadTableAtTheLevel2EntryLikeAFullWalk()
    {
        var (m, _) = MachineWithPages();
        using var _ = m;
        m.WriteEntry(A, Va, 2, DevicePte.Table(Aperture.System, 1UL << 40).Value);
        var walker = m.CreateWalker();
        var full = walker.Walk(m.Roots[A], Va, Access.Read, out var reached);
        Assert.False(reached.IsValid);                    // a full walk never reaches such a table, so never caches it

        var cached = walker.WalkLeafTable(new LeafTablePointer(full.Entry, full.EntryAperture, full.EntryAddress), Va, Access.Read);

        Assert.Equal((TranslationStatus.BadTable, 2, 3), (full.Status, full.Level, full.Reads));
        Assert.Equal(full with { Reads = 0 }, cached);
    }

    [Fact]
    public void Translate_WalkRacedByAnInvalidation_DoesNotCacheItsTable()
    {
        var (m, mmu) = MachineWithPages();
        using var _ = m;
        m.Kernel.Run(() =>
        {
            var engine = m.Scheduler.Spawn("engine", () =>
            {
                // A miss: the walk reads four entries, then charges 4 × 5 ns, during which the driver invalidates.
                Assert.True(TranslateOnce(mmu, A, Va).IsOk);
            }, SimThreadKind.Device);
            m.Scheduler.Sleep(10);
            mmu.Tlb.InvalidatePage(B, 0).Wait();
            engine.Join();
        });

        TranslateOnce(mmu, A, Va + Page);

        Assert.Equal(8, mmu.Walker.EntryReads);
        Assert.Equal(0, mmu.Stats.WalkCacheHits);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic, 1UL)]
    [InlineData(SchedulerMode.Deterministic, 2UL)]
    [InlineData(SchedulerMode.Threaded, 3UL)]
    public void SwapTable_EnginesMissingWhileDriverSwapsAndInvalidates_NeverUseATableAfterItsInvalidationCompleted(
        SchedulerMode mode, ulong seed)
    {
        // The driver points the region's level-2 entry at level-1 table n (every leaf of which maps frame n),
        // invalidates the region, waits and publishes "n completed". With a one-entry TLB every translation of a new
        // page misses and walks from the cached table: none may reach a frame older than the last completed epoch.
        const int epochs = 30;
        const int pages = 8;
        using var m = new MmuTestMachine(seed, mode);
        m.CreateRoot(A);
        var frames = new ulong[epochs];
        var tables = new ulong[epochs];
        for (int n = 0; n < epochs; n++)
        {
            frames[n] = m.AllocPage();
            tables[n] = m.AllocPage();
            for (ulong p = 0; p < pages; p++)
            {
                Assert.True(m.System.TryWriteUInt64(DevicePageTable.EntryAddress(tables[n], 1, Va + (p * Page)),
                    DevicePte.Leaf(Aperture.System, frames[n], PtePermissions.Read).Value));
            }
        }
        m.MapNewPage(A, Va);                                      // creates the upper tables
        m.WriteEntry(A, Va, 2, DevicePte.Table(Aperture.System, tables[0]).Value);
        var mmu = m.CreateMmu(new DeviceMmuOptions { TlbSets = 1, TlbWays = 1 });
        int completed = 0;
        int stop = 0;
        long translations = 0;

        m.Kernel.Run(() =>
        {
            var engines = new List<SimThread>();
            for (int e = 0; e < 2; e++)
            {
                int engine = e;
                engines.Add(m.Scheduler.Spawn($"engine{e}", () =>
                {
                    ulong p = (ulong)engine;
                    while (Volatile.Read(ref stop) == 0)
                    {
                        var use = mmu.BeginUse();
                        int before = Volatile.Read(ref completed);
                        for (int i = 0; i < 4; i++, p++)
                        {
                            var t = mmu.Translate(use, A, Va + (p % pages * Page), Access.Read);
                            Assert.True(t.IsOk, $"translation failed: {t.Status}");
                            int frame = Array.IndexOf(frames, t.Address);
                            Assert.True(frame >= before, $"translated to frame {frame} after epoch {before} completed");
                        }
                        m.Scheduler.Sleep(20);
                        mmu.EndUse(use);
                        Interlocked.Increment(ref translations);
                    }
                }, SimThreadKind.Device));
            }
            for (int n = 1; n < epochs; n++)
            {
                long seen = Volatile.Read(ref translations);
                while (Volatile.Read(ref translations) == seen)
                    m.Scheduler.Sleep(10);
                m.WriteEntry(A, Va, 2, DevicePte.Table(Aperture.System, tables[n]).Value);
                mmu.Tlb.InvalidateRange(A, Va, Va + Region).Wait();
                Volatile.Write(ref completed, n);
                m.Scheduler.Sleep(50);
            }
            Volatile.Write(ref stop, 1);
            foreach (var e in engines)
                e.Join();
        });

        Assert.True(mmu.Stats.WalkCacheHits > 0, "the engines never used the page-walk cache");
        mmu.Tlb.AssertInvariants();
    }

    /// <summary>
    /// Plays a driver that gives <paramref name="va"/>'s 2 MiB region a new level-1 table (a copy of the old one with
    /// <paramref name="va"/> mapped to a fresh page) by rewriting the level-2 entry; returns the fresh page.
    /// </summary>
    private static ulong ReplaceLeafTable(MmuTestMachine m, ushort asid, ulong va)
    {
        var walker = m.CreateWalker(levelNs: 0);
        walker.Walk(m.Roots[asid], va, Access.Read, out var old);
        Assert.True(old.IsValid);
        ulong table = m.AllocPage();
        for (int i = 0; i < DevicePageTable.EntriesPerTable; i++)
        {
            ulong offset = (ulong)i * DevicePageTable.EntrySize;
            Assert.True(m.Port(old.Entry.Aperture).TryReadUInt64(old.Entry.Address + offset, out ulong e));
            Assert.True(m.System.TryWriteUInt64(table + offset, e));
        }
        ulong page = m.AllocPage();
        Assert.True(m.System.TryWriteUInt64(DevicePageTable.EntryAddress(table, 1, va),
            DevicePte.Leaf(Aperture.System, page, PtePermissions.ReadWrite).Value));
        m.WriteEntry(asid, va, 2, DevicePte.Table(Aperture.System, table).Value);
        return page;
    }
}
