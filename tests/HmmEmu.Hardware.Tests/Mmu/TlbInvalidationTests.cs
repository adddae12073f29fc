using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;
using HmmEmu.Kernel.Locking;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Mmu;

/// <summary>
/// The ATS completion rule (INV-2): an invalidation completes only after the in-flight uses that translated a
/// covered page have ended, and never waits for uses that did not.
/// </summary>
public sealed class TlbInvalidationTests
{
    private const ushort A = 1;
    private const ushort B = 2;
    private const ulong Page = 4096;
    private const ulong Va = 0x40_0000;

    public static TheoryData<SchedulerMode> Modes => new() { SchedulerMode.Deterministic, SchedulerMode.Threaded };

    /// <summary>
    /// Runs an engine thread that begins a use, translates <paramref name="touches"/>, and holds the use until the
    /// driver (the main thread) has run <paramref name="driver"/>; returns whether the engine had ended its use when
    /// the driver's ticket wait returned.
    /// </summary>
    private static (TlbInvalidation Ticket, bool CompleteWhileUseHeld, bool UseEndedBeforeWaitReturned) RunEngineAndDriver(
        MmuTestMachine m, DeviceMmu mmu, (ushort Asid, ulong Va)[] touches, Func<DeviceTlb, TlbInvalidation> driver)
    {
        TlbInvalidation? ticket = null;
        bool completeWhileHeld = false;
        bool endedBeforeWait = false;
        int ended = 0;
        m.Kernel.Run(() =>
        {
            var translated = new Completion(m.Kernel, "translated");
            var release = new Completion(m.Kernel, "release");
            var engine = m.Scheduler.Spawn("engine", () =>
            {
                var use = mmu.BeginUse();
                foreach (var (asid, va) in touches)
                    Assert.True(mmu.Translate(use, asid, va, Access.Read).IsOk);
                translated.Complete();
                release.Wait();
                Volatile.Write(ref ended, 1);
                mmu.EndUse(use);
            }, SimThreadKind.Device);
            translated.Wait();
            ticket = driver(mmu.Tlb);
            completeWhileHeld = ticket.IsComplete;
            release.Complete();
            ticket.Wait();
            endedBeforeWait = Volatile.Read(ref ended) == 1;
            engine.Join();
        });
        return (ticket!, completeWhileHeld, endedBeforeWait);
    }

    private static (MmuTestMachine M, DeviceMmu Mmu) MachineWithPages(SchedulerMode mode, DeviceMmuOptions? options = null)
    {
        var m = new MmuTestMachine(seed: 7, mode);
        m.CreateRoot(A);
        m.CreateRoot(B);
        foreach (ushort asid in new[] { A, B })
        {
            for (ulong p = 0; p < 128; p += 1)
                m.MapNewPage(asid, Va + (p * Page));
        }
        return (m, m.CreateMmu(options));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvalidatePage_UseTranslatedThePage_CompletesOnlyAfterEndUse(SchedulerMode mode)
    {
        var (m, mmu) = MachineWithPages(mode);
        using var _ = m;

        var (ticket, completeWhileHeld, endedFirst) =
            RunEngineAndDriver(m, mmu, [(A, Va)], tlb => tlb.InvalidatePage(A, Va));

        Assert.False(completeWhileHeld);
        Assert.Equal(1, ticket.UsesAwaited);
        Assert.True(endedFirst);
        Assert.True(ticket.IsComplete);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvalidatePage_EntryGoneAtOnce_EvenWhileTheTicketWaits(SchedulerMode mode)
    {
        var (m, mmu) = MachineWithPages(mode);
        using var _ = m;
        bool cachedAfterInvalidate = true;

        RunEngineAndDriver(m, mmu, [(A, Va)], tlb =>
        {
            var t = tlb.InvalidatePage(A, Va);
            cachedAfterInvalidate = tlb.Contains(A, Va);
            return t;
        });

        Assert.False(cachedAfterInvalidate);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvalidateAsid_UseTouchedOnlyAnotherAsid_IsCompleteAtOnce(SchedulerMode mode)
    {
        var (m, mmu) = MachineWithPages(mode);
        using var _ = m;

        var (ticket, completeWhileHeld, _) = RunEngineAndDriver(m, mmu, [(B, Va), (B, Va + Page)], tlb => tlb.InvalidateAsid(A));

        Assert.True(completeWhileHeld);
        Assert.Equal(0, ticket.UsesAwaited);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvalidateAsid_UseTouchedThatAsid_Waits(SchedulerMode mode)
    {
        var (m, mmu) = MachineWithPages(mode);
        using var _ = m;

        var (ticket, completeWhileHeld, endedFirst) = RunEngineAndDriver(m, mmu, [(B, Va), (A, Va + (9 * Page))], tlb => tlb.InvalidateAsid(A));

        Assert.False(completeWhileHeld);
        Assert.Equal(1, ticket.UsesAwaited);
        Assert.True(endedFirst);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvalidatePage_UseTouchedOtherPagesOfThatAsid_IsCompleteAtOnce(SchedulerMode mode)
    {
        var (m, mmu) = MachineWithPages(mode);
        using var _ = m;

        // Pages 0-1 (recorded to the end of their group) and page G + 40 are two separate records, so page G + 10
        // between them is not covered.
        const ulong g = InFlightUses.ForwardGroupPages;
        var (ticket, completeWhileHeld, _) = RunEngineAndDriver(m, mmu,
            [(A, Va), (A, Va + Page), (A, Va + ((g + 40) * Page)), (B, Va + ((g + 10) * Page))],
            tlb => tlb.InvalidatePage(A, Va + ((g + 10) * Page)));

        Assert.True(completeWhileHeld);
        Assert.Equal(0, ticket.UsesAwaited);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvalidatePage_AheadOfAForwardRunInItsGroup_WaitsConservatively(SchedulerMode mode)
    {
        var (m, mmu) = MachineWithPages(mode);
        using var _ = m;

        // Pages 0 and 1 grow a run forward: the use records up to the last page of their group, not beyond.
        const ulong g = InFlightUses.ForwardGroupPages;
        var (ticket, completeWhileHeld, _) = RunEngineAndDriver(m, mmu, [(A, Va), (A, Va + Page)],
            tlb => tlb.InvalidatePage(A, Va + ((g - 1) * Page)));
        var (beyond, beyondComplete, _) = RunEngineAndDriver(m, mmu, [(A, Va), (A, Va + Page)],
            tlb => tlb.InvalidatePage(A, Va + (g * Page)));

        Assert.False(completeWhileHeld);
        Assert.Equal(1, ticket.UsesAwaited);
        Assert.True(beyondComplete);
        Assert.Equal(0, beyond.UsesAwaited);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvalidateRange_OverlapsOneTouchedPage_Waits(SchedulerMode mode)
    {
        var (m, mmu) = MachineWithPages(mode);
        using var _ = m;

        var (ticket, completeWhileHeld, endedFirst) = RunEngineAndDriver(m, mmu, [(A, Va + (10 * Page))],
            tlb => tlb.InvalidateRange(A, Va + (10 * Page) + 4095, Va + (20 * Page)));

        Assert.False(completeWhileHeld);
        Assert.Equal(1, ticket.UsesAwaited);
        Assert.True(endedFirst);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void InvalidateAll_UseWithAnyTranslation_Waits(SchedulerMode mode)
    {
        var (m, mmu) = MachineWithPages(mode);
        using var _ = m;

        var (ticket, completeWhileHeld, endedFirst) = RunEngineAndDriver(m, mmu, [(B, Va + (77 * Page))], tlb => tlb.InvalidateAll());

        Assert.False(completeWhileHeld);
        Assert.Equal(1, ticket.UsesAwaited);
        Assert.True(endedFirst);
    }

    [Fact]
    public void InvalidateAsid_UseTouchedMoreAsidsThanItRecords_WaitsConservatively()
    {
        var m = new MmuTestMachine();
        using var _ = m;
        for (ushort asid = 1; asid <= 6; asid++)
        {
            m.CreateRoot(asid);
            m.MapNewPage(asid, Va);
        }
        var mmu = m.CreateMmu();
        var use = mmu.BeginUse();
        for (ushort asid = 1; asid <= InFlightUses.RangesPerUse + 1; asid++)
            Assert.True(mmu.Translate(use, asid, Va, Access.Read).IsOk);

        var t = mmu.Tlb.InvalidateAsid(6);   // never touched, but the records overflowed

        Assert.False(t.IsComplete);
        mmu.EndUse(use);
        Assert.True(t.IsComplete);
    }

    [Fact]
    public void Invalidate_OnlyTheOneThatAwaitsAUse_CountsAnInvalidationWait()
    {
        var (m, mmu) = MachineWithPages(SchedulerMode.Deterministic);
        using var _ = m;
        var use = mmu.BeginUse();
        mmu.Translate(use, A, Va, Access.Read);

        mmu.Tlb.InvalidatePage(A, Va + Page);
        mmu.Tlb.InvalidatePage(A, Va);
        mmu.EndUse(use);

        Assert.Equal((2L, 1L), (mmu.Stats.Invalidations, mmu.Stats.InvalidationWaits));
    }

    [Fact]
    public void Invalidate_UseBegunAfterTheInvalidation_IsNotAwaited()
    {
        var (m, mmu) = MachineWithPages(SchedulerMode.Deterministic);
        using var _ = m;
        var first = mmu.BeginUse();
        mmu.Translate(first, A, Va, Access.Read);

        var t = mmu.Tlb.InvalidatePage(A, Va);
        var second = mmu.BeginUse();
        mmu.Translate(second, A, Va, Access.Read);
        mmu.EndUse(first);

        Assert.True(t.IsComplete);
        Assert.Equal(0, t.UsesPending);
        mmu.EndUse(second);
    }

    [Fact]
    public void InvalidatePage_UseWhoseWalkIsInProgress_DiscardsTheFillAndWaitsForTheUse()
    {
        var (m, mmu) = MachineWithPages(SchedulerMode.Deterministic);
        using var _ = m;
        TlbInvalidation? ticket = null;
        bool completeDuringUse = true;
        bool cachedAfterWalk = true;

        m.Kernel.Run(() =>
        {
            var engine = m.Scheduler.Spawn("engine", () =>
            {
                var use = mmu.BeginUse();
                // A miss: the walk reads four entries, then charges 4 × 5 ns, during which the driver runs.
                Assert.True(mmu.Translate(use, A, Va, Access.Read).IsOk);
                cachedAfterWalk = mmu.Tlb.Contains(A, Va);
                completeDuringUse = ticket!.IsComplete;
                mmu.EndUse(use);
            }, SimThreadKind.Device);
            m.Scheduler.Sleep(10);
            ticket = mmu.Tlb.InvalidatePage(A, Va);
            ticket.Wait();
            engine.Join();
        });

        Assert.Equal(0, ticket!.EntriesDropped);     // nothing was cached yet
        Assert.Equal(1, ticket.UsesAwaited);        // but the walking use was awaited
        Assert.False(completeDuringUse);
        Assert.False(cachedAfterWalk);              // and what it read was not installed
        Assert.Equal(1, mmu.Stats.FillsDiscarded);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic, 1UL)]
    [InlineData(SchedulerMode.Deterministic, 2UL)]
    [InlineData(SchedulerMode.Deterministic, 3UL)]
    [InlineData(SchedulerMode.Threaded, 4UL)]
    public void Remap_EnginesTranslatingWhileDriverRemapsAndWaits_NeverUseAFrameAfterItsInvalidationCompleted(
        SchedulerMode mode, ulong seed)
    {
        // INV-2: the driver moves Va to frame n, invalidates and waits, then publishes "n completed". No use may
        // translate to a frame older than the last completed one, nor still hold frame n-1 once n completed.
        const int epochs = 40;
        using var m = new MmuTestMachine(seed, mode);
        m.CreateRoot(A);
        var frames = new ulong[epochs];
        for (int i = 0; i < epochs; i++)
            frames[i] = m.AllocPage();
        m.Map(A, Va, DevicePte.Leaf(Aperture.System, frames[0], PtePermissions.Read));
        var mmu = m.CreateMmu(new DeviceMmuOptions { TlbSets = 4, TlbWays = 2 });
        int completed = 0;
        int stop = 0;
        long translations = 0;

        m.Kernel.Run(() =>
        {
            var engines = new List<SimThread>();
            for (int e = 0; e < 2; e++)
            {
                engines.Add(m.Scheduler.Spawn($"engine{e}", () =>
                {
                    while (Volatile.Read(ref stop) == 0)
                    {
                        var use = mmu.BeginUse();
                        int before = Volatile.Read(ref completed);
                        var t = mmu.Translate(use, A, Va + 8, Access.Read);
                        Assert.True(t.IsOk, $"translation failed: {t.Status}");
                        int frame = Array.IndexOf(frames, t.Address - 8);
                        Assert.True(frame >= before, $"translated to frame {frame} after epoch {before} completed");
                        m.Scheduler.Sleep(30);   // the access itself, with the translation held
                        Assert.True(Volatile.Read(ref completed) <= frame,
                            $"epoch {Volatile.Read(ref completed)} completed while a use still held frame {frame}");
                        mmu.EndUse(use);
                        Interlocked.Increment(ref translations);
                    }
                }, SimThreadKind.Device));
            }
            for (int n = 1; n < epochs; n++)
            {
                // Let the engines finish a use in every epoch (threaded engines may start late on a busy machine).
                long seen = Volatile.Read(ref translations);
                while (Volatile.Read(ref translations) == seen)
                    m.Scheduler.Sleep(10);
                m.WriteEntry(A, Va, 1, DevicePte.Leaf(Aperture.System, frames[n], PtePermissions.Read).Value);
                mmu.Tlb.InvalidatePage(A, Va).Wait();
                Volatile.Write(ref completed, n);
                m.Scheduler.Sleep(50);
            }
            Volatile.Write(ref stop, 1);
            foreach (var e in engines)
                e.Join();
        });

        Assert.True(Volatile.Read(ref translations) >= epochs - 1);
        mmu.Tlb.AssertInvariants();
    }
}
