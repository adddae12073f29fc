using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

/// <summary>
/// Every page-table change that takes something away from a mirroring device (unmap, frame change, loss of read or
/// write) must come after an invalidate callback covering the address, with the event the Linux path uses.
/// </summary>
public sealed class InvalidationOrderTests
{
    private const ulong Page = TestMachine.Page;

    private readonly record struct Entry(bool IsInvalidation, NotifierEvent Event, ulong Start, ulong End, ulong Addr, Pte Old, Pte New)
    {
        public override string ToString() => IsInvalidation
            ? $"invalidate {Event} [0x{Start:x}, 0x{End:x})"
            : $"pte 0x{Addr:x}: {Old} -> {New}";
    }

    /// <summary>Records invalidate callbacks and entry changes of one address space into one ordered log.</summary>
    private sealed class Recorder
    {
        private readonly List<Entry> _log = [];

        public Recorder(Mm mm, RecordingNotifierOps ops)
        {
            ops.OnInvalidate = (_, r) =>
            {
                lock (_log)
                    _log.Add(new Entry(true, r.Event, r.Start, r.End, 0, default, default));
            };
            mm.PteObserver = (addr, oldPte, newPte) =>
            {
                lock (_log)
                    _log.Add(new Entry(false, default, 0, 0, addr, oldPte, newPte));
            };
        }

        public void Reset()
        {
            lock (_log)
                _log.Clear();
        }

        public Entry[] Log
        {
            get
            {
                lock (_log)
                    return [.. _log];
            }
        }
    }

    private static Recorder Record(TestMachine m, ulong start, ulong length)
    {
        var ops = new RecordingNotifierOps();
        m.Watch(start, length, ops);
        return new Recorder(m.Mm, ops);
    }

    private static void AssertEveryDowngradePrecededBy(Entry[] log, NotifierEvent expected)
    {
        int downgrades = 0;
        for (int i = 0; i < log.Length; i++)
        {
            var e = log[i];
            if (e.IsInvalidation || !e.Old.IsDowngradedBy(e.New))
                continue;
            downgrades++;
            bool covered = false;
            for (int j = 0; j < i && !covered; j++)
                covered = log[j].IsInvalidation && log[j].Event == expected && log[j].Start <= e.Addr && e.Addr < log[j].End;
            Assert.True(covered, $"{e} was not preceded by an {expected} invalidation covering it. Log:\n{string.Join("\n", log)}");
        }
        Assert.True(downgrades > 0, $"the operation downgraded no entry, so it proves nothing. Log:\n{string.Join("\n", log)}");
    }

    // Runs one operation on a watched range and checks the recorded log.
    private static void AssertOperation(NotifierEvent expected, ulong watchLength, Func<TestMachine, ulong> setup, Action<TestMachine, ulong, Recorder> act)
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = setup(m);
            var rec = Record(m, a, watchLength);
            act(m, a, rec);
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, expected);
    }

    private static ulong TouchedAnon(TestMachine m, int pages)
    {
        ulong a = m.MapAnon(pages);
        m.Touch(a, pages);
        return a;
    }

    private static ulong FileMapping(TestMachine m, int pages, MapFlags flags)
    {
        var file = m.Kernel.CreateTmpFile();
        Assert.Equal(Errno.Ok, file.Truncate((ulong)pages * Page));
        return m.Process.Map((ulong)pages * Page, Prot.ReadWrite, flags, file);
    }

    [Fact]
    public void Munmap_MappedPages_EveryDowngradePrecededByUnmap() =>
        AssertOperation(NotifierEvent.Unmap, 4 * Page, m => TouchedAnon(m, 4),
            (m, a, _) => Assert.Equal(Errno.Ok, m.Mm.Munmap(a, 4 * Page)));

    [Fact]
    public void Mprotect_ReadOnly_EveryDowngradePrecededByProtectionVma() =>
        AssertOperation(NotifierEvent.ProtectionVma, 4 * Page, m => TouchedAnon(m, 4),
            (m, a, _) => Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, 4 * Page, Prot.Read)));

    [Fact]
    public void Mprotect_ProtNone_EveryDowngradePrecededByProtectionVma() =>
        AssertOperation(NotifierEvent.ProtectionVma, 4 * Page, m => TouchedAnon(m, 4),
            (m, a, _) => Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, 4 * Page, Prot.None)));

    [Fact]
    public void Madvise_DontNeed_EveryDowngradePrecededByClear() =>
        AssertOperation(NotifierEvent.Clear, 4 * Page, m => TouchedAnon(m, 4),
            (m, a, _) => Assert.Equal(Errno.Ok, m.Mm.Madvise(a, 4 * Page, Advice.DontNeed)));

    [Fact]
    public void Write_SharedCowPageAfterFork_EveryDowngradePrecededByClear() =>
        AssertOperation(NotifierEvent.Clear, 2 * Page, m => TouchedAnon(m, 2), (m, a, rec) =>
        {
            m.Process.Fork();
            rec.Reset();
            m.Process.WriteInt32(a + Page, 9);
        });

    [Fact]
    public void Write_ZeroPage_EveryDowngradePrecededByClear() =>
        AssertOperation(NotifierEvent.Clear, Page, m =>
        {
            ulong a = m.MapAnon(1);
            m.Process.ReadInt32(a);
            return a;
        }, (m, a, _) => m.Process.WriteInt32(a, 9));

    [Fact]
    public void Write_PrivateFilePage_EveryDowngradePrecededByClear() =>
        AssertOperation(NotifierEvent.Clear, Page, m =>
        {
            ulong a = FileMapping(m, 1, MapFlags.Private);
            m.Process.ReadInt32(a);
            return a;
        }, (m, a, _) => m.Process.WriteInt32(a, 9));

    [Fact]
    public void Fork_PrivateWritablePages_EveryParentDowngradePrecededByProtectionPage() =>
        AssertOperation(NotifierEvent.ProtectionPage, 4 * Page, m => TouchedAnon(m, 4), (m, _, _) => m.Process.Fork());

    [Fact]
    public void Mmap_FixedOverMappedPages_EveryDowngradePrecededByUnmap() =>
        AssertOperation(NotifierEvent.Unmap, 4 * Page, m => TouchedAnon(m, 4),
            (m, a, _) => Assert.Equal(Errno.Ok, m.Mm.Mmap(a + Page, 2 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous | MapFlags.Fixed, out ulong _)));

    [Fact]
    public void OomReap_MappedPages_EveryDowngradePrecededByUnmap() =>
        AssertOperation(NotifierEvent.Unmap, 4 * Page, m => TouchedAnon(m, 4), (m, _, _) => Assert.Equal(Errno.Ok, m.Mm.OomReap()));

    [Fact]
    public void Exit_MappedPages_EveryDowngradePrecededByUnmap() =>
        AssertOperation(NotifierEvent.Unmap, 4 * Page, m => TouchedAnon(m, 4), (m, _, _) => m.Process.Exit());

    [Fact]
    public void ShrinkNow_MappedFilePages_EveryDowngradePrecededByClear() =>
        AssertOperation(NotifierEvent.Clear, 4 * Page, m =>
        {
            ulong a = FileMapping(m, 4, MapFlags.Shared);
            m.Touch(a, 4);
            return a;
        }, (m, _, _) => Assert.Equal(4, m.Kernel.Reclaim.ShrinkNow(4)));

    [Fact]
    public void Migrate_AnonymousPages_EveryDowngradePrecededByMigrate() =>
        AssertOperation(NotifierEvent.Migrate, 4 * Page, m => TouchedAnon(m, 4), (m, a, _) =>
        {
            using (m.Mm.MmapReadLock())
            {
                var args = new Migration.MigrateVma
                {
                    Vma = m.Mm.VmaLookup(a), Start = a, End = a + 4 * Page, Src = new ulong[4], Dst = new ulong[4],
                    PgmapOwner = "test", Flags = Migration.MigrateSelect.System,
                };
                Assert.Equal(Errno.Ok, Migration.Migrate.VmaSetup(args));
                Assert.Equal(4UL, args.CPages);
                Migration.Migrate.VmaPages(args);              // no destinations: every source is restored
                Migration.Migrate.VmaFinalize(args);
            }
        });
}
