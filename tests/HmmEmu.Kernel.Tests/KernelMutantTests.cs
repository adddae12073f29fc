using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Tests;

/// <summary>
/// The switchable kernel bugs (<see cref="KernelMutant"/>): each shows its symptom directly, and the same scenario on
/// the correct kernel does not. Also the mmu_notifier.read_retry trace event the coherence suite counts.
/// </summary>
public sealed class KernelMutantTests
{
    private const ulong Page = TestMachine.Page;
    private const int Pages = 4;

    /// <summary>Boots a deterministic kernel (seed 1) with <paramref name="mutants"/> switched on.</summary>
    private static HostKernel Boot(KernelMutant mutants, bool retainTrace = false) =>
        new(KernelOptions.For(1) with { Mutants = mutants, RetainTrace = retainTrace });

    /// <summary>Maps <see cref="Pages"/> private anonymous pages and writes every one of them. May sleep.</summary>
    private static ulong MapTouched(Process p)
    {
        ulong a = p.Map(Pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        for (int i = 0; i < Pages; i++)
            p.WriteInt32(a + ((ulong)i * Page), 100 + i);
        return a;
    }

    /// <summary>The notifier's sequence before and after each of four madvise(DONTNEED) invalidations of its range.</summary>
    private static ulong[] SeqAcrossFourInvalidations(KernelMutant mutants)
    {
        using var k = Boot(mutants);
        var p = k.CreateProcess("test");
        var seqs = new ulong[5];
        k.Run(() =>
        {
            ulong a = MapTouched(p);
            var n = TestMachine.Watch(p.Mm, a, Pages * Page, new RecordingNotifierOps());
            seqs[0] = n.Seq;
            for (int i = 1; i < seqs.Length; i++)
            {
                Assert.Equal(Errno.Ok, p.Mm.Madvise(a, Pages * Page, Advice.DontNeed));
                seqs[i] = n.Seq;
            }
        });
        return seqs;
    }

    /// <summary>ReadRetry for a snapshot taken by ReadBegin before four invalidations of the notifier's range.</summary>
    private static bool ReadRetryAfterFourInvalidations(KernelMutant mutants)
    {
        using var k = Boot(mutants);
        var p = k.CreateProcess("test");
        bool retry = false;
        k.Run(() =>
        {
            ulong a = MapTouched(p);
            var n = TestMachine.Watch(p.Mm, a, Pages * Page, new RecordingNotifierOps());
            ulong seq = n.ReadBegin();
            for (int i = 0; i < 4; i++)
                Assert.Equal(Errno.Ok, p.Mm.Madvise(a, Pages * Page, Advice.DontNeed));
            retry = n.ReadRetry(seq);
        });
        return retry;
    }

    [Fact]
    public void KernelOptions_Default_NoMutants()
    {
        Assert.Equal(KernelMutant.None, KernelOptions.For(1).Mutants);
    }

    [Fact]
    public void NotifierSeq_NarrowNotifierSeqAfterFourInvalidations_ComesBackToFirstValue()
    {
        var seqs = SeqAcrossFourInvalidations(KernelMutant.NarrowNotifierSeq);

        Assert.Equal(seqs[0], seqs[4]);
    }

    [Fact]
    public void NotifierSeq_NoMutantAfterFourInvalidations_NeverRepeats()
    {
        var seqs = SeqAcrossFourInvalidations(KernelMutant.None);

        Assert.Equal(seqs.Length, seqs.Distinct().Count());
    }

    [Fact]
    public void ReadRetry_NarrowNotifierSeqSnapshotBeforeFourInvalidations_ReturnsFalse()
    {
        Assert.False(ReadRetryAfterFourInvalidations(KernelMutant.NarrowNotifierSeq));
    }

    [Fact]
    public void ReadRetry_NoMutantSnapshotBeforeFourInvalidations_ReturnsTrue()
    {
        Assert.True(ReadRetryAfterFourInvalidations(KernelMutant.None));
    }

    /// <summary>Runs the OOM reaper over touched pages watched by a notifier that refuses non-blockable ranges.</summary>
    private static (Errno Result, int Present, int Refused, long ActiveRanges, ulong Seq) ReapWithRefusingNotifier(KernelMutant mutants)
    {
        using var k = Boot(mutants);
        var p = k.CreateProcess("test");
        var ops = new RecordingNotifierOps { RefuseNonBlockable = true };
        (Errno, int, int, long, ulong) outcome = default;
        k.Run(() =>
        {
            ulong a = MapTouched(p);
            TestMachine.Watch(p.Mm, a, Pages * Page, ops);
            var err = p.Mm.OomReap();
            outcome = (err, p.Mm.CountPresent(a, a + (Pages * Page)), ops.Refused, p.Mm.Subscriptions.ActiveRanges, p.Mm.NotifierSeq);
        });
        return outcome;
    }

    [Fact]
    public void OomReap_OomReapIgnoresRefusalCallbackRefuses_PagesGone()
    {
        var outcome = ReapWithRefusingNotifier(KernelMutant.OomReapIgnoresRefusal);

        Assert.Equal((1, 0), (outcome.Refused, outcome.Present));
    }

    [Fact]
    public void OomReap_OomReapIgnoresRefusalCallbackRefuses_StartAndEndStayPaired()
    {
        var outcome = ReapWithRefusingNotifier(KernelMutant.OomReapIgnoresRefusal);

        Assert.Equal((0L, 0UL), (outcome.ActiveRanges, outcome.Seq & 1));
    }

    [Fact]
    public void OomReap_NoMutantCallbackRefuses_PagesStay()
    {
        var outcome = ReapWithRefusingNotifier(KernelMutant.None);

        Assert.Equal((Errno.EAGAIN, 1, Pages), (outcome.Result, outcome.Refused, outcome.Present));
    }

    /// <summary>madvise(DONTNEED) of watched pages; the mm's sequence and running-invalidation count once it returned.</summary>
    private static (ulong Seq, long ActiveRanges) AfterMadviseDontNeed(KernelMutant mutants)
    {
        using var k = Boot(mutants);
        var p = k.CreateProcess("test");
        (ulong, long) outcome = default;
        k.Run(() =>
        {
            ulong a = MapTouched(p);
            TestMachine.Watch(p.Mm, a, Pages * Page, new RecordingNotifierOps());
            Assert.Equal(Errno.Ok, p.Mm.Madvise(a, Pages * Page, Advice.DontNeed));
            outcome = (p.Mm.NotifierSeq, p.Mm.Subscriptions.ActiveRanges);
        });
        return outcome;
    }

    [Fact]
    public void Madvise_MadviseSkipsInvalidateEnd_SequenceStaysOddWithOneActiveRange()
    {
        var (seq, active) = AfterMadviseDontNeed(KernelMutant.MadviseSkipsInvalidateEnd);

        Assert.Equal((1UL, 1L), (seq & 1, active));
    }

    [Fact]
    public void Madvise_NoMutant_SequenceEvenWithNoActiveRange()
    {
        var (seq, active) = AfterMadviseDontNeed(KernelMutant.None);

        Assert.Equal((0UL, 0L), (seq & 1, active));
    }

    /// <summary>Forks a process whose touched private pages a notifier watches; its callbacks and the parent's entries afterwards.</summary>
    private static (IReadOnlyList<MmuNotifierRange> Ranges, Pte[] ParentPtes) ForkWatched(KernelMutant mutants)
    {
        using var k = Boot(mutants);
        var p = k.CreateProcess("test");
        var ops = new RecordingNotifierOps();
        var ptes = new Pte[Pages];
        k.Run(() =>
        {
            ulong a = MapTouched(p);
            TestMachine.Watch(p.Mm, a, Pages * Page, ops);
            p.Fork();
            for (int i = 0; i < Pages; i++)
                ptes[i] = p.Mm.GetPte(a + ((ulong)i * Page));
        });
        return (ops.Ranges, ptes);
    }

    [Fact]
    public void Fork_ForkSkipsInvalidation_NotifierSeesNoCallback()
    {
        Assert.Empty(ForkWatched(KernelMutant.ForkSkipsInvalidation).Ranges);
    }

    [Fact]
    public void Fork_ForkSkipsInvalidation_ParentPtesStillWriteProtected()
    {
        var ptes = ForkWatched(KernelMutant.ForkSkipsInvalidation).ParentPtes;

        Assert.All(ptes, pte => Assert.True(pte.IsPresent && !pte.IsWritable, $"expected read-only, got {pte}"));
    }

    [Fact]
    public void Fork_NoMutant_NotifierSeesProtectionPage()
    {
        var range = Assert.Single(ForkWatched(KernelMutant.None).Ranges);

        Assert.Equal(NotifierEvent.ProtectionPage, range.Event);
    }

    /// <summary>mprotect(PROT_READ) of touched pages a notifier watches; its callbacks and the entries afterwards.</summary>
    private static (IReadOnlyList<MmuNotifierRange> Ranges, Pte[] Ptes) MprotectWatched(KernelMutant mutants)
    {
        using var k = Boot(mutants);
        var p = k.CreateProcess("test");
        var ops = new RecordingNotifierOps();
        var ptes = new Pte[Pages];
        k.Run(() =>
        {
            ulong a = MapTouched(p);
            TestMachine.Watch(p.Mm, a, Pages * Page, ops);
            Assert.Equal(Errno.Ok, p.Mm.Mprotect(a, Pages * Page, Prot.Read));
            for (int i = 0; i < Pages; i++)
                ptes[i] = p.Mm.GetPte(a + ((ulong)i * Page));
        });
        return (ops.Ranges, ptes);
    }

    [Fact]
    public void Mprotect_MprotectSkipsInvalidation_NotifierSeesNoCallback()
    {
        Assert.Empty(MprotectWatched(KernelMutant.MprotectSkipsInvalidation).Ranges);
    }

    [Fact]
    public void Mprotect_MprotectSkipsInvalidation_PtesStillReadOnly()
    {
        var ptes = MprotectWatched(KernelMutant.MprotectSkipsInvalidation).Ptes;

        Assert.All(ptes, pte => Assert.True(pte.IsPresent && !pte.IsWritable, $"expected read-only, got {pte}"));
    }

    [Fact]
    public void Mprotect_NoMutant_NotifierSeesProtectionVma()
    {
        var range = Assert.Single(MprotectWatched(KernelMutant.None).Ranges);

        Assert.Equal(NotifierEvent.ProtectionVma, range.Event);
    }

    /// <summary>
    /// One thread unmaps a watched page; its callback blocks on a completion. Another thread removes the notifier
    /// meanwhile. Returns whether the callback was still inside when Remove returned.
    /// </summary>
    private static bool CallbackInsideWhenRemoveReturned(KernelMutant mutants)
    {
        using var k = Boot(mutants);
        var p = k.CreateProcess("test");
        bool insideAtReturn = false;
        k.Run(() =>
        {
            var entered = new Completion(k, "entered");
            var release = new Completion(k, "release");
            bool inside = false;
            ulong a = p.Map(Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            p.WriteInt32(a, 1);
            var ops = new RecordingNotifierOps();
            var n = TestMachine.Watch(p.Mm, a, Page, ops);
            ops.OnInvalidate = (_, _) =>
            {
                inside = true;
                entered.Complete();
                release.Wait();
                inside = false;
            };
            var unmapper = p.StartThread("unmapper", () => Assert.Equal(Errno.Ok, p.Mm.Munmap(a, Page)));
            entered.Wait();
            var remover = p.StartThread("remover", () =>
            {
                n.Remove();
                insideAtReturn = inside;
            });
            k.Scheduler.Sleep(100_000);
            release.Complete();
            unmapper.Join();
            remover.Join();
        });
        return insideAtReturn;
    }

    [Fact]
    public void Remove_RemoveSkipsCallbackWaitWhileCallbackBlocks_ReturnsWithCallbackInside()
    {
        Assert.True(CallbackInsideWhenRemoveReturned(KernelMutant.RemoveSkipsCallbackWait));
    }

    [Fact]
    public void Remove_NoMutantWhileCallbackBlocks_ReturnsAfterCallbackLeft()
    {
        Assert.False(CallbackInsideWhenRemoveReturned(KernelMutant.None));
    }

    /// <summary>The mmu_notifier.read_retry events recorded around a ReadBegin/ReadRetry, with or without an invalidation between.</summary>
    private static (bool Retry, ulong NotifierStart, ulong NotifierSeq, TraceEvent[] Events) ReadRetryTrace(bool invalidate)
    {
        using var k = Boot(KernelMutant.None, retainTrace: true);
        var p = k.CreateProcess("test");
        (bool, ulong, ulong) outcome = default;
        k.Run(() =>
        {
            ulong a = MapTouched(p);
            var n = TestMachine.Watch(p.Mm, a, Pages * Page, new RecordingNotifierOps());
            ulong seq = n.ReadBegin();
            if (invalidate)
                Assert.Equal(Errno.Ok, p.Mm.Madvise(a, Page, Advice.DontNeed));
            outcome = (n.ReadRetry(seq), a, n.Seq);
        });
        var events = k.Trace.Snapshot().Where(e => e.Type.Category == "mmu_notifier" && e.Type.Name == "read_retry").ToArray();
        return (outcome.Item1, outcome.Item2, outcome.Item3, events);
    }

    [Fact]
    public void ReadRetry_Collision_RecordsReadRetryEventWithNotifierStartAndSeq()
    {
        var (retry, start, seq, events) = ReadRetryTrace(invalidate: true);

        var ev = Assert.Single(events);
        Assert.Equal((true, start, seq), (retry, ev.A, ev.B));
    }

    [Fact]
    public void ReadRetry_NoCollision_RecordsNoReadRetryEvent()
    {
        var (retry, _, _, events) = ReadRetryTrace(invalidate: false);

        Assert.Equal((false, 0), (retry, events.Length));
    }

    /// <summary>Runs <paramref name="act"/> on touched pages a notifier watches and returns the events its callbacks saw.</summary>
    private static NotifierEvent[] EventsSeen(KernelMutant mutants, Action<Process, ulong> act)
    {
        using var k = Boot(mutants);
        var p = k.CreateProcess("test");
        var ops = new RecordingNotifierOps();
        k.Run(() =>
        {
            ulong a = MapTouched(p);
            TestMachine.Watch(p.Mm, a, Pages * Page, ops);
            act(p, a);
        });
        return [.. ops.Ranges.Select(r => r.Event)];
    }

    private static void Munmap(Process p, ulong a) => Assert.Equal(Errno.Ok, p.Mm.Munmap(a, Pages * Page));

    // The parent writes a page it shares copy-on-write with a child: the COW break replaces the parent's page.
    private static void CowBreak(Process p, ulong a)
    {
        var child = p.Fork();
        p.WriteInt32(a, 7);
        child.Exit();
    }

    // make_device_exclusive, then a CPU write, which restores the page.
    private static void ExclusiveThenCpuWrite(Process p, ulong a)
    {
        ulong pfn;
        using (p.Mm.MmapReadLock())
            Assert.Equal(Errno.Ok, p.Mm.MakeDeviceExclusive(a, new object(), out pfn));
        p.Kernel.Memory.UnlockPage(pfn);
        p.Kernel.Memory.PutPage(pfn);
        p.WriteInt32(a, 7);
    }

    [Theory]
    [InlineData(KernelMutant.MunmapSkipsInvalidation, "munmap")]
    [InlineData(KernelMutant.CowSkipsInvalidation, "cow")]
    [InlineData(KernelMutant.ExclusiveRestoreSkipsInvalidation, "exclusive")]
    public void Operation_MutantSkipsItsInvalidation_NotifierMissesExactlyThatEvent(KernelMutant mutant, string operation)
    {
        Action<Process, ulong> act = operation switch
        {
            "munmap" => Munmap,
            "cow" => CowBreak,
            _ => ExclusiveThenCpuWrite,
        };
        // The operation's own event: Unmap for munmap, Clear for the COW break and for the restore.
        var expected = operation == "munmap" ? NotifierEvent.Unmap : NotifierEvent.Clear;

        var correct = EventsSeen(KernelMutant.None, act);
        var mutated = EventsSeen(mutant, act);

        Assert.Contains(expected, correct);
        Assert.Equal(correct.Count(e => e == expected) - 1, mutated.Count(e => e == expected));
    }

    // hmm_range_fault of a page the process may only read: the correct kernel reports it read-only, the mutant writable.
    private static ulong RangeFaultOfReadOnlyPage(KernelMutant mutants)
    {
        using var k = Boot(mutants);
        var p = k.CreateProcess("test");
        ulong entry = 0;
        k.Run(() =>
        {
            ulong a = MapTouched(p);
            Assert.Equal(Errno.Ok, p.Mm.Mprotect(a, Pages * Page, Prot.Read));
            var n = TestMachine.Watch(p.Mm, a, Page, new RecordingNotifierOps());
            var range = new HmmRange(n, a, a + Page) { NotifierSeq = n.ReadBegin(), DefaultFlags = HmmPfn.ReqFault };
            using (p.Mm.MmapReadLock())
                Assert.Equal(Errno.Ok, Hmm.RangeFault(range));
            entry = range.HmmPfns[0];
        });
        return entry;
    }

    [Fact]
    public void RangeFault_RangeFaultIgnoresReadOnly_ReportsAReadOnlyPageWritable()
    {
        Assert.Equal(0UL, RangeFaultOfReadOnlyPage(KernelMutant.None) & HmmPfn.Write);
        Assert.NotEqual(0UL, RangeFaultOfReadOnlyPage(KernelMutant.RangeFaultIgnoresReadOnly) & HmmPfn.Write);
    }
}
