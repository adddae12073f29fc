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

    [Fact]
    public void Munmap_MappedPages_EveryDowngradePrecededByUnmap()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var rec = Record(m, a, 4 * Page);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, 4 * Page));
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.Unmap);
    }

    [Fact]
    public void Mprotect_ReadOnly_EveryDowngradePrecededByProtectionVma()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var rec = Record(m, a, 4 * Page);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, 4 * Page, Prot.Read));
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.ProtectionVma);
    }

    [Fact]
    public void Mprotect_ProtNone_EveryDowngradePrecededByProtectionVma()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var rec = Record(m, a, 4 * Page);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, 4 * Page, Prot.None));
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.ProtectionVma);
    }

    [Fact]
    public void Madvise_DontNeed_EveryDowngradePrecededByClear()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var rec = Record(m, a, 4 * Page);
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a, 4 * Page, Advice.DontNeed));
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.Clear);
    }

    [Fact]
    public void Write_SharedCowPageAfterFork_EveryDowngradePrecededByClear()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            var rec = Record(m, a, 2 * Page);
            m.Process.Fork();
            rec.Reset();
            m.Process.WriteInt32(a + Page, 9);
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.Clear);
    }

    [Fact]
    public void Write_ZeroPage_EveryDowngradePrecededByClear()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.ReadInt32(a);
            var rec = Record(m, a, Page);
            m.Process.WriteInt32(a, 9);
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.Clear);
    }

    [Fact]
    public void Write_PrivateFilePage_EveryDowngradePrecededByClear()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(Page));
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Private, file);
            m.Process.ReadInt32(a);
            var rec = Record(m, a, Page);
            m.Process.WriteInt32(a, 9);
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.Clear);
    }

    [Fact]
    public void Fork_PrivateWritablePages_EveryParentDowngradePrecededByProtectionPage()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var rec = Record(m, a, 4 * Page);
            m.Process.Fork();
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.ProtectionPage);
    }

    [Fact]
    public void Mmap_FixedOverMappedPages_EveryDowngradePrecededByUnmap()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var rec = Record(m, a, 4 * Page);
            Assert.Equal(Errno.Ok, m.Mm.Mmap(a + Page, 2 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous | MapFlags.Fixed, out _));
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.Unmap);
    }

    [Fact]
    public void OomReap_MappedPages_EveryDowngradePrecededByUnmap()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var rec = Record(m, a, 4 * Page);
            Assert.Equal(Errno.Ok, m.Mm.OomReap());
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.Unmap);
    }

    [Fact]
    public void Exit_MappedPages_EveryDowngradePrecededByUnmap()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            var rec = Record(m, a, 4 * Page);
            m.Process.Exit();
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.Unmap);
    }

    [Fact]
    public void ShrinkNow_MappedFilePages_EveryDowngradePrecededByClear()
    {
        using var m = TestMachine.Create();
        Entry[] log = [];

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(4 * Page));
            ulong a = m.Process.Map(4 * Page, Prot.ReadWrite, MapFlags.Shared, file);
            m.Touch(a, 4);
            var rec = Record(m, a, 4 * Page);
            Assert.Equal(4, m.Kernel.Reclaim.ShrinkNow(4));
            log = rec.Log;
        });

        AssertEveryDowngradePrecededBy(log, NotifierEvent.Clear);
    }
}
