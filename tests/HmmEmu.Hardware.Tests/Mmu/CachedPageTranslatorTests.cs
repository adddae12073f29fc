using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;
using HmmEmu.Kernel.Locking;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Mmu;

/// <summary>
/// <see cref="CachedPageTranslator"/>: a TLB over a device-defined <see cref="IPageSource"/>. Only valid leaves are
/// cached, a permission failure drops the entry, failures of the source pass through, and an invalidation completes
/// only after the uses that translated a covered page have ended.
/// </summary>
public sealed class CachedPageTranslatorTests
{
    private const ushort A = 1;
    private const ushort B = 2;
    private const ulong Page = 4096;
    private const ulong Va = 0x40_0000;

    /// <summary>
    /// A flat table of leaves keyed by (id, page): a missing key answers <see cref="Missing"/>, and every lookup is
    /// counted. <see cref="OnLookup"/>, when set, runs inside each lookup (to charge time, or to race it).
    /// </summary>
    private sealed class TablePageSource : IPageSource
    {
        private readonly Dictionary<(ushort Asid, ulong Vpn), DevicePte> _leaves = [];
        private readonly Dictionary<(ushort Asid, ulong Vpn), TranslationStatus> _failures = [];

        public int Lookups { get; private set; }

        public TranslationStatus Missing { get; set; } = TranslationStatus.NotPresent;

        public Action? OnLookup { get; set; }

        /// <summary>Maps page <paramref name="va"/> of <paramref name="asid"/> to a fresh frame address; returns it.</summary>
        public ulong Map(ushort asid, ulong va, PtePermissions permissions = PtePermissions.ReadWrite)
        {
            ulong frame = 0x10_0000 + ((ulong)_leaves.Count * Page);
            Set(asid, va, DevicePte.Leaf(Aperture.System, frame, permissions));
            return frame;
        }

        public void Set(ushort asid, ulong va, DevicePte leaf)
        {
            _failures.Remove((asid, va / Page));
            _leaves[(asid, va / Page)] = leaf;
        }

        public void Fail(ushort asid, ulong va, TranslationStatus status)
        {
            _leaves.Remove((asid, va / Page));
            _failures[(asid, va / Page)] = status;
        }

        public DevicePte Get(ushort asid, ulong va) => _leaves[(asid, va / Page)];

        public TranslationStatus Lookup(ushort asid, ulong vpn, out DevicePte page)
        {
            Lookups++;
            OnLookup?.Invoke();
            if (_failures.TryGetValue((asid, vpn), out var status))
            {
                page = DevicePte.Invalid;
                return status;
            }
            if (_leaves.TryGetValue((asid, vpn), out page))
                return TranslationStatus.Ok;
            page = DevicePte.Invalid;
            return Missing;
        }
    }

    private static CachedPageTranslator Create(MmuTestMachine m, TablePageSource source, int sets = 64, int ways = 4) =>
        new(m.Scheduler, "test.cache", source, sets, ways, useSlots: 8);

    /// <summary>Translates <paramref name="va"/> in its own use.</summary>
    private static TranslationResult TranslateOnce(CachedPageTranslator cache, ushort asid, ulong va, Access access = Access.Read)
    {
        var use = cache.BeginUse();
        try
        {
            return cache.Translate(use, asid, va, access);
        }
        finally
        {
            cache.EndUse(use);
        }
    }

    [Fact]
    public void Translate_SamePageTwice_AsksTheSourceOnceThenHits()
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        ulong frame = source.Map(A, Va);
        var cache = Create(m, source);

        var first = TranslateOnce(cache, A, Va + 0x10);
        var second = TranslateOnce(cache, A, Va + 0xFF0, Access.Write);

        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.System, frame + 0x10, Page - 0x10), first);
        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.System, frame + 0xFF0, 0x10), second);
        Assert.Equal(1, source.Lookups);
        Assert.True(cache.Tlb.Contains(A, Va));
        var s = cache.Stats;
        Assert.Equal((1L, 1L, 1L, 0L, 1L), (s.Misses, s.Hits, s.Walks, s.WalkFaults, s.Fills));
    }

    [Fact]
    public void Translate_VramLeaf_ReturnsTheVramAperture()
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        source.Set(A, Va, DevicePte.Leaf(Aperture.Vram, 0x20_0000, PtePermissions.ReadWrite));
        var cache = Create(m, source);

        var r = TranslateOnce(cache, A, Va + 8);

        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.Vram, 0x20_0008, Page - 8), r);
    }

    [Fact]
    public void Translate_SameAddressInTwoIds_CachesEachSeparately()
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        ulong frameA = source.Map(A, Va);
        ulong frameB = source.Map(B, Va);
        var cache = Create(m, source);

        TranslateOnce(cache, A, Va);
        TranslateOnce(cache, B, Va);

        Assert.Equal(frameA, TranslateOnce(cache, A, Va).Address);
        Assert.Equal(frameB, TranslateOnce(cache, B, Va).Address);
        Assert.Equal(2, source.Lookups);
    }

    [Theory]
    [InlineData(true)]      // the source says NotPresent
    [InlineData(false)]     // the source says Ok but hands back an invalid entry
    public void Translate_NotPresent_IsNeverCachedAndAValidEntryIsSeenWithoutInvalidation(bool statusNotPresent)
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource { Missing = statusNotPresent ? TranslationStatus.NotPresent : TranslationStatus.Ok };
        var cache = Create(m, source);

        Assert.Equal(TranslationStatus.NotPresent, TranslateOnce(cache, A, Va).Status);
        Assert.Equal(TranslationStatus.NotPresent, TranslateOnce(cache, A, Va).Status);
        Assert.False(cache.Tlb.Contains(A, Va));
        Assert.Equal(2, source.Lookups);

        ulong frame = source.Map(A, Va);   // the driver writes the entry valid: no invalidation needed

        var r = TranslateOnce(cache, A, Va);
        Assert.Equal((TranslationStatus.Ok, frame), (r.Status, r.Address));
        Assert.Equal(3, source.Lookups);
        Assert.Equal(0, cache.Stats.Invalidations);
    }

    [Fact]
    public void Translate_WriteToReadOnlyLeaf_FailsPermissionAndDropsTheCachedEntry()
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        source.Map(A, Va, PtePermissions.Read);
        var cache = Create(m, source);
        Assert.True(TranslateOnce(cache, A, Va, Access.Read).IsOk);
        Assert.True(cache.Tlb.Contains(A, Va));

        var denied = TranslateOnce(cache, A, Va, Access.Write);

        Assert.Equal(TranslationStatus.Permission, denied.Status);
        Assert.False(cache.Tlb.Contains(A, Va));
        Assert.Equal(1, source.Lookups);        // the denied write was a hit on the read-only entry
    }

    [Fact]
    public void Translate_ReadOnlyLeafUpgradedInTheSource_TheNextWriteSeesIt()
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        ulong frame = source.Map(A, Va, PtePermissions.Read);
        var cache = Create(m, source);
        TranslateOnce(cache, A, Va, Access.Read);
        Assert.Equal(TranslationStatus.Permission, TranslateOnce(cache, A, Va, Access.Write).Status);

        source.Set(A, Va, source.Get(A, Va).WithPermissions(PtePermissions.ReadWrite));   // upgraded in place

        var r = TranslateOnce(cache, A, Va + 0x20, Access.Write);
        Assert.Equal((TranslationStatus.Ok, frame + 0x20), (r.Status, r.Address));
        Assert.Equal(2, source.Lookups);
        Assert.True(TranslateOnce(cache, A, Va, Access.Write).IsOk);
        Assert.Equal(2, source.Lookups);        // and the writable entry is cached
    }

    [Fact]
    public void Translate_AtomicOnLeafWithoutAtomicRight_FailsPermission()
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        source.Map(A, Va, PtePermissions.ReadWrite);
        var cache = Create(m, source);

        Assert.Equal(TranslationStatus.Permission, TranslateOnce(cache, A, Va, Access.Atomic).Status);
        Assert.False(cache.Tlb.Contains(A, Va));
    }

    [Theory]
    [InlineData(TranslationStatus.OutOfRange)]
    [InlineData(TranslationStatus.BadTable)]
    public void Translate_SourceFails_PassesTheStatusThroughAndCachesNothing(TranslationStatus status)
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        source.Fail(A, Va, status);
        var cache = Create(m, source);

        Assert.Equal(status, TranslateOnce(cache, A, Va).Status);
        Assert.Equal(status, TranslateOnce(cache, A, Va, Access.Write).Status);

        Assert.False(cache.Tlb.Contains(A, Va));
        Assert.Equal(2, source.Lookups);
        Assert.Equal((2L, 2L, 0L), (cache.Stats.Walks, cache.Stats.WalkFaults, cache.Stats.Fills));
    }

    [Fact]
    public void Translate_AddressOf48BitsOrMore_IsOutOfRangeWithoutAskingTheSource()
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        var cache = Create(m, source);

        Assert.Equal(TranslationStatus.OutOfRange, TranslateOnce(cache, A, DevicePageTable.VirtualAddressLimit).Status);
        Assert.Equal(TranslationStatus.OutOfRange, TranslateOnce(cache, A, ulong.MaxValue).Status);
        Assert.Equal(0, source.Lookups);
    }

    [Fact]
    public void Stats_CountHitsMissesWalksAndFaultedWalks()
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        source.Map(A, Va);
        source.Map(A, Va + Page, PtePermissions.Read);
        source.Fail(A, Va + (3 * Page), TranslationStatus.BadTable);
        var cache = Create(m, source);

        TranslateOnce(cache, A, Va);                            // miss, walk, fill
        TranslateOnce(cache, A, Va + 8);                        // hit
        TranslateOnce(cache, A, Va + Page);                     // miss, walk, fill
        TranslateOnce(cache, A, Va + Page, Access.Write);       // hit, permission: dropped
        TranslateOnce(cache, A, Va + (2 * Page));               // miss, faulted walk (not present)
        TranslateOnce(cache, A, Va + (3 * Page));               // miss, faulted walk (bad table)
        TranslateOnce(cache, A, Va + Page);                     // miss again (dropped), walk, fill

        var s = cache.Stats;
        Assert.Equal((2L, 5L, 5L, 2L, 3L), (s.Hits, s.Misses, s.Walks, s.WalkFaults, s.Fills));
        Assert.Equal(5, source.Lookups);
        Assert.Equal(2.0 / 7.0, s.HitRate, 9);
        cache.Tlb.AssertInvariants();
    }

    [Fact]
    public void InvalidateRange_UseTranslatedACoveredPage_CompletesOnlyAfterEndUse()
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        source.Map(A, Va + (4 * Page));
        var cache = Create(m, source);
        var use = cache.BeginUse();
        Assert.True(cache.Translate(use, A, Va + (4 * Page), Access.Read).IsOk);

        var ticket = cache.Tlb.InvalidateRange(A, Va, Va + (8 * Page));

        Assert.False(ticket.IsComplete);
        Assert.Equal((1, 1, 1), (ticket.UsesAwaited, ticket.UsesPending, ticket.EntriesDropped));
        Assert.False(cache.Tlb.Contains(A, Va + (4 * Page)));   // the entry is gone at once
        cache.EndUse(use);
        Assert.True(ticket.IsComplete);
        Assert.Equal(1, cache.Stats.InvalidationWaits);
    }

    [Fact]
    public void InvalidateRange_UseTouchedOnlyOtherPagesOrIds_IsCompleteAtOnce()
    {
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        source.Map(A, Va + (100 * Page));
        source.Map(B, Va);
        var cache = Create(m, source);
        var use = cache.BeginUse();
        Assert.True(cache.Translate(use, A, Va + (100 * Page), Access.Read).IsOk);
        Assert.True(cache.Translate(use, B, Va, Access.Read).IsOk);

        var ticket = cache.Tlb.InvalidateRange(A, Va, Va + (8 * Page));

        Assert.True(ticket.IsComplete);
        Assert.Equal(0, ticket.UsesAwaited);
        cache.EndUse(use);
    }

    [Fact]
    public void InvalidateRange_UseWhoseLookupFailed_StillWaitsForIt()
    {
        // A use that touched the page but got NotPresent holds no translation, yet it published its touch before
        // asking: the invalidation waits for it conservatively (never the other way round).
        using var m = new MmuTestMachine();
        var source = new TablePageSource();
        var cache = Create(m, source);
        var use = cache.BeginUse();
        Assert.Equal(TranslationStatus.NotPresent, cache.Translate(use, A, Va, Access.Read).Status);

        var ticket = cache.Tlb.InvalidatePage(A, Va);

        Assert.False(ticket.IsComplete);
        cache.EndUse(use);
        Assert.True(ticket.IsComplete);
    }

    [Fact]
    public void Wait_EngineHoldsATranslation_ReturnsOnlyAfterTheEngineEndedItsUse()
    {
        using var m = new MmuTestMachine(seed: 3);
        var source = new TablePageSource();
        source.Map(A, Va);
        var cache = Create(m, source);
        TlbInvalidation? ticket = null;
        bool completeWhileHeld = true;
        bool endedBeforeWaitReturned = false;
        int ended = 0;

        m.Kernel.Run(() =>
        {
            var translated = new Completion(m.Kernel, "translated");
            var release = new Completion(m.Kernel, "release");
            var engine = m.Scheduler.Spawn("engine", () =>
            {
                var use = cache.BeginUse();
                Assert.True(cache.Translate(use, A, Va, Access.Write).IsOk);
                translated.Complete();
                release.Wait();
                m.Scheduler.Sleep(100);            // the access itself, with the translation held
                Volatile.Write(ref ended, 1);
                cache.EndUse(use);
            }, SimThreadKind.Device);
            translated.Wait();
            ticket = cache.Tlb.InvalidatePage(A, Va);
            completeWhileHeld = ticket.IsComplete;
            release.Complete();
            ticket.Wait();
            endedBeforeWaitReturned = Volatile.Read(ref ended) == 1;
            engine.Join();
        });

        Assert.False(completeWhileHeld);
        Assert.True(endedBeforeWaitReturned);
        Assert.True(ticket!.IsComplete);
    }

    [Fact]
    public void Translate_InvalidationRunsDuringTheSourceLookup_DiscardsTheFill()
    {
        using var m = new MmuTestMachine(seed: 5);
        var source = new TablePageSource();
        source.Map(A, Va);
        var cache = Create(m, source);
        // The lookup takes 1 µs of virtual time (an MTT read over PCIe); the driver invalidates meanwhile.
        source.OnLookup = () => m.Scheduler.Sleep(1_000);
        TlbInvalidation? ticket = null;
        bool completeDuringUse = true;
        bool cachedAfterLookup = true;
        TranslationResult result = default;

        m.Kernel.Run(() =>
        {
            var engine = m.Scheduler.Spawn("engine", () =>
            {
                var use = cache.BeginUse();
                result = cache.Translate(use, A, Va, Access.Read);
                cachedAfterLookup = cache.Tlb.Contains(A, Va);
                completeDuringUse = ticket!.IsComplete;
                cache.EndUse(use);
            }, SimThreadKind.Device);
            m.Scheduler.Sleep(100);
            ticket = cache.Tlb.InvalidatePage(A, Va);
            ticket.Wait();
            engine.Join();
        });

        Assert.True(result.IsOk);                   // the lookup's answer is used once, under the use
        Assert.False(cachedAfterLookup);            // but not installed
        Assert.False(completeDuringUse);
        Assert.Equal(1, ticket!.UsesAwaited);
        Assert.Equal(1, cache.Stats.FillsDiscarded);
    }
}
