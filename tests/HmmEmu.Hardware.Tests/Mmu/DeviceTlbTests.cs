using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Mmu;

public sealed class DeviceTlbTests
{
    private const ushort A = 1;
    private const ushort B = 2;
    private const ulong Page = 4096;

    /// <summary>Translates <paramref name="va"/> in its own use.</summary>
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

    [Fact]
    public void Translate_SamePageTwice_MissesThenHits()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        ulong page = m.MapNewPage(A, 0x40_0000);
        var mmu = m.CreateMmu();

        var first = TranslateOnce(mmu, A, 0x40_0010);
        var second = TranslateOnce(mmu, A, 0x40_0FF0);

        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.System, page + 0x10, Page - 0x10), first);
        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.System, page + 0xFF0, 0x10), second);
        var s = mmu.Stats;
        Assert.Equal((1L, 1L, 1L, 1L), (s.Misses, s.Hits, s.Walks, s.Fills));
    }

    [Fact]
    public void Translate_PteChangedWithoutInvalidation_StillReturnsCachedPage()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        ulong oldPage = m.MapNewPage(A, 0x40_0000);
        var mmu = m.CreateMmu();
        TranslateOnce(mmu, A, 0x40_0000);

        m.MapNewPage(A, 0x40_0000);

        Assert.Equal(oldPage, TranslateOnce(mmu, A, 0x40_0000).Address);
    }

    [Fact]
    public void Translate_PteChangedAndPageInvalidated_ReturnsNewPage()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        m.MapNewPage(A, 0x40_0000);
        var mmu = m.CreateMmu();
        TranslateOnce(mmu, A, 0x40_0000);
        ulong newPage = m.MapNewPage(A, 0x40_0000);

        mmu.Tlb.InvalidatePage(A, 0x40_0000);

        Assert.Equal(newPage, TranslateOnce(mmu, A, 0x40_0000).Address);
        Assert.Equal(2, mmu.Stats.Walks);
    }

    [Fact]
    public void Translate_NotPresent_IsNotCached()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        var mmu = m.CreateMmu();

        Assert.Equal(TranslationStatus.NotPresent, TranslateOnce(mmu, A, 0x40_0000).Status);
        Assert.Equal(TranslationStatus.NotPresent, TranslateOnce(mmu, A, 0x40_0000).Status);

        Assert.Equal((2L, 2L, 0L), (mmu.Stats.Walks, mmu.Stats.WalkFaults, mmu.Stats.Fills));
    }

    [Fact]
    public void Translate_WriteToCachedReadOnlyPage_IsPermissionOnAHit()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        m.MapNewPage(A, 0x40_0000, PtePermissions.Read);
        var mmu = m.CreateMmu();
        TranslateOnce(mmu, A, 0x40_0000, Access.Read);

        var r = TranslateOnce(mmu, A, 0x40_0000, Access.Write);

        Assert.Equal(TranslationStatus.Permission, r.Status);
        Assert.Equal((1L, 1L), (mmu.Stats.Hits, mmu.Stats.Walks));
    }

    [Fact]
    public void Translate_AsidWithoutRoot_IsNotPresent()
    {
        using var m = new MmuTestMachine();
        var mmu = m.CreateMmu();

        Assert.Equal(TranslationStatus.NotPresent, TranslateOnce(mmu, A, 0x1000).Status);
    }

    [Fact]
    public void Translate_AsidBeyondRootCapacity_IsOutOfRange()
    {
        using var m = new MmuTestMachine();
        var mmu = m.CreateMmu();

        Assert.Equal(TranslationStatus.OutOfRange, TranslateOnce(mmu, 999, 0x1000).Status);
    }

    [Fact]
    public void Translate_SetConflict_EvictsTheOldestWayInOrder()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        var mmu = m.CreateMmu(new DeviceMmuOptions { TlbSets = 4, TlbWays = 2 });
        ulong[] vas = [0, 4 * Page, 8 * Page, 12 * Page];   // all in set 0
        foreach (ulong va in vas)
            m.MapNewPage(A, va);
        Assert.All(vas, va => Assert.Equal(0, mmu.Tlb.SetOf(va)));

        TranslateOnce(mmu, A, vas[0]);
        TranslateOnce(mmu, A, vas[1]);
        TranslateOnce(mmu, A, vas[2]);   // evicts vas[0]

        Assert.Equal([false, true, true], vas[..3].Select(va => mmu.Tlb.Contains(A, va)));
        TranslateOnce(mmu, A, vas[3]);   // evicts vas[1]
        Assert.Equal([false, false, true, true], vas.Select(va => mmu.Tlb.Contains(A, va)));
        Assert.Equal(2, mmu.Stats.Evictions);
        mmu.Tlb.AssertInvariants();
    }

    [Fact]
    public void Translate_HitDoesNotChangeTheVictim()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        var mmu = m.CreateMmu(new DeviceMmuOptions { TlbSets = 4, TlbWays = 2 });
        ulong[] vas = [0, 4 * Page, 8 * Page];
        foreach (ulong va in vas)
            m.MapNewPage(A, va);
        TranslateOnce(mmu, A, vas[0]);
        TranslateOnce(mmu, A, vas[1]);

        TranslateOnce(mmu, A, vas[0]);   // a hit: first-in first-out ignores it
        TranslateOnce(mmu, A, vas[2]);

        Assert.False(mmu.Tlb.Contains(A, vas[0]));
        Assert.True(mmu.Tlb.Contains(A, vas[1]));
    }

    [Fact]
    public void Translate_SameAddressInTwoAsids_CachesAndReturnsEachSeparately()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        m.CreateRoot(B);
        ulong pageA = m.MapNewPage(A, 0x40_0000);
        ulong pageB = m.MapNewPage(B, 0x40_0000);
        var mmu = m.CreateMmu();

        TranslateOnce(mmu, A, 0x40_0000);
        TranslateOnce(mmu, B, 0x40_0000);

        Assert.Equal(pageA, TranslateOnce(mmu, A, 0x40_0000).Address);
        Assert.Equal(pageB, TranslateOnce(mmu, B, 0x40_0000).Address);
        Assert.Equal((2L, 2L), (mmu.Stats.Misses, mmu.Stats.Hits));
    }

    /// <summary>Caches pages 0..7 of asids A and B (16 entries in a 4 × 8 TLB: nothing is evicted).</summary>
    private static (MmuTestMachine M, DeviceMmu Mmu) CacheEightPagesInTwoAsids()
    {
        var m = new MmuTestMachine();
        m.CreateRoot(A);
        m.CreateRoot(B);
        var mmu = m.CreateMmu(new DeviceMmuOptions { TlbSets = 4, TlbWays = 8 });
        foreach (ushort asid in new[] { A, B })
        {
            for (ulong p = 0; p < 8; p++)
            {
                m.MapNewPage(asid, p * Page);
                Assert.True(TranslateOnce(mmu, asid, p * Page).IsOk);
            }
        }
        Assert.Equal(16, mmu.Tlb.Count);
        return (m, mmu);
    }

    private static bool[] Cached(DeviceMmu mmu, ushort asid) =>
        [.. Enumerable.Range(0, 8).Select(p => mmu.Tlb.Contains(asid, (ulong)p * Page))];

    [Fact]
    public void InvalidatePage_RemovesOnlyThatPageOfThatAsid()
    {
        var (m, mmu) = CacheEightPagesInTwoAsids();
        using var _ = m;

        var t = mmu.Tlb.InvalidatePage(A, (3 * Page) + 0x123);

        Assert.Equal(1, t.EntriesDropped);
        Assert.Equal([true, true, true, false, true, true, true, true], Cached(mmu, A));
        Assert.All(Cached(mmu, B), Assert.True);
    }

    [Fact]
    public void InvalidateRange_FewPages_RemovesExactlyThePagesTheRangeTouches()
    {
        var (m, mmu) = CacheEightPagesInTwoAsids();
        using var _ = m;

        var t = mmu.Tlb.InvalidateRange(A, (2 * Page) + 1, (4 * Page) + 1);   // touches pages 2, 3, 4

        Assert.Equal(3, t.EntriesDropped);
        Assert.Equal([true, true, false, false, false, true, true, true], Cached(mmu, A));
        Assert.All(Cached(mmu, B), Assert.True);
    }

    [Fact]
    public void InvalidateRange_MorePagesThanSets_RemovesExactlyThePagesInTheRange()
    {
        var (m, mmu) = CacheEightPagesInTwoAsids();
        using var _ = m;

        var t = mmu.Tlb.InvalidateRange(A, 1 * Page, 7 * Page);   // pages 1..6: six pages, four sets: full scan

        Assert.Equal(6, t.EntriesDropped);
        Assert.Equal([true, false, false, false, false, false, false, true], Cached(mmu, A));
        Assert.All(Cached(mmu, B), Assert.True);
    }

    [Fact]
    public void InvalidateAsid_RemovesEveryEntryOfThatAsidOnly()
    {
        var (m, mmu) = CacheEightPagesInTwoAsids();
        using var _ = m;

        var t = mmu.Tlb.InvalidateAsid(B);

        Assert.Equal(8, t.EntriesDropped);
        Assert.All(Cached(mmu, A), Assert.True);
        Assert.All(Cached(mmu, B), Assert.False);
    }

    [Fact]
    public void InvalidateAll_RemovesEverything()
    {
        var (m, mmu) = CacheEightPagesInTwoAsids();
        using var _ = m;

        var t = mmu.Tlb.InvalidateAll();

        Assert.Equal(16, t.EntriesDropped);
        Assert.Equal(0, mmu.Tlb.Count);
        mmu.Tlb.AssertInvariants();
    }

    [Fact]
    public void Invalidate_Counters_CountCommandsAndDroppedEntries()
    {
        var (m, mmu) = CacheEightPagesInTwoAsids();
        using var _ = m;

        mmu.Tlb.InvalidatePage(A, 0);
        mmu.Tlb.InvalidatePage(A, 0);     // already gone
        mmu.Tlb.InvalidateAsid(B);

        Assert.Equal((3L, 9L), (mmu.Stats.Invalidations, mmu.Stats.EntriesDropped));
    }

    [Fact]
    public void InvalidatePage_NoUseInFlight_IsCompleteAtOnce()
    {
        var (m, mmu) = CacheEightPagesInTwoAsids();
        using var _ = m;

        var t = mmu.Tlb.InvalidatePage(A, 0);

        Assert.True(t.IsComplete);
        Assert.Equal(0, t.UsesAwaited);
    }

    [Fact]
    public void InvalidateRange_EmptyRange_ThrowsNamingTheRule()
    {
        using var m = new MmuTestMachine();
        var mmu = m.CreateMmu();

        var ex = Assert.Throws<ArgumentException>(() => mmu.Tlb.InvalidateRange(A, 0x2000, 0x2000));

        Assert.Contains("exclusive", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_SetsNotAPowerOfTwo_Throws()
    {
        using var m = new MmuTestMachine();

        Assert.Throws<ArgumentOutOfRangeException>(() => m.CreateMmu(new DeviceMmuOptions { TlbSets = 6 }));
    }

    [Fact]
    public void Stats_HitsOfALiveUse_CountOnceWhileItRunsAndAfterItEnds()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        m.MapNewPage(A, 0x40_0000);
        var mmu = m.CreateMmu();
        var use = mmu.BeginUse();

        for (int i = 0; i < 4; i++)
            Assert.True(mmu.Translate(use, A, 0x40_0000 + ((ulong)i * 8), Access.Read).IsOk);
        long whileLive = mmu.Stats.Hits;
        mmu.EndUse(use);
        TranslateOnce(mmu, A, 0x40_0000);

        Assert.Equal(3L, whileLive);
        Assert.Equal((1L, 4L), (mmu.Stats.Misses, mmu.Stats.Hits));
    }

    [Theory]
    [InlineData(1UL << 48)]
    [InlineData(1UL << 60)]
    [InlineData((1UL << 60) | (1UL << 48))]
    public void Translate_AboveTheLimitWithTheLowBitsOfACachedPage_IsOutOfRange(ulong high)
    {
        // The use has recorded and the TLB caches page 0x40_0000 of A and of B: an address that equals it in its low
        // 48 bits must still fail, whichever id it is translated for.
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        m.CreateRoot(B);
        m.MapNewPage(A, 0x40_0000);
        m.MapNewPage(B, 0x40_0000);
        var mmu = m.CreateMmu();
        var use = mmu.BeginUse();
        Assert.True(mmu.Translate(use, A, 0x40_0000, Access.Read).IsOk);
        Assert.True(mmu.Translate(use, B, 0x40_0000, Access.Read).IsOk);

        Assert.Equal(TranslationStatus.OutOfRange, mmu.Translate(use, A, high | 0x40_0000, Access.Read).Status);
        Assert.Equal(TranslationStatus.OutOfRange, mmu.Translate(use, B, high | 0x40_0000, Access.Read).Status);
        mmu.EndUse(use);
    }

    [Fact]
    public void Translate_TwoThreadsEvictingEachOthersPageFromOneWay_EachAlwaysGetsItsOwnFrame()
    {
        // One set of one way: every miss of one thread evicts the other's entry while that thread may be reading it
        // without a lock. A hit that paired one page's tag with the other's leaf would return the wrong frame.
        using var m = new MmuTestMachine(seed: 3, SchedulerMode.Threaded);
        m.CreateRoot(A);
        ulong[] frames = [m.MapNewPage(A, 0x40_0000), m.MapNewPage(A, 0x40_1000)];
        var mmu = m.CreateMmu(new DeviceMmuOptions { TlbSets = 1, TlbWays = 1 });
        const int rounds = 100_000;
        var wrong = new int[2];

        m.Kernel.Run(() =>
        {
            var threads = new List<SimThread>();
            for (int t = 0; t < 2; t++)
            {
                int me = t;
                threads.Add(m.Scheduler.Spawn($"engine{me}", () =>
                {
                    var use = mmu.BeginUse();
                    ulong va = 0x40_0000 + ((ulong)me * Page);
                    for (int i = 0; i < rounds; i++)
                    {
                        var r = mmu.Translate(use, A, va + 8, Access.Read);
                        if (!r.IsOk || r.Address != frames[me] + 8)
                            wrong[me]++;
                    }
                    mmu.EndUse(use);
                }, SimThreadKind.Device));
            }
            foreach (var t in threads)
                t.Join();
        });

        Assert.Equal([0, 0], wrong);
        Assert.True(mmu.Stats.Hits > 0, "no translation hit: the test did not exercise the lock-free path");
        mmu.Tlb.AssertInvariants();
    }
}
