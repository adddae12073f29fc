using HmmEmu.Kernel.Fs;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

/// <summary>Page reclaim of page-cache pages mapped by processes and mirrored by notifiers.</summary>
public sealed class ReclaimTests
{
    private const ulong Page = TestMachine.Page;
    private const ulong SmallRam = 1UL << 20;          // 256 frames
    private const int FilePages = 128;
    private const int AnonPages = 160;                  // FilePages + AnonPages do not fit in SmallRam

    /// <summary>What <see cref="FillFileThenAllocate"/> saw.</summary>
    private sealed record Outcome(IReadOnlyList<MmuNotifierRange> Ranges, long Reclaimed, int PresentAfter, int[] FileValues, int[] ValuesReadByFile, int DiskPages);

    /// <summary>
    /// On a machine with 1 MiB of RAM: writes a distinct value into each of 128 pages of a shared file mapping that a
    /// notifier watches, then writes 160 pages of anonymous memory, which cannot all fit and forces direct reclaim
    /// of the file's pages. Reads the file pages back through the mapping and through the file afterwards.
    /// </summary>
    private static Outcome FillFileThenAllocate()
    {
        using var m = TestMachine.Create(ramBytes: SmallRam);
        Outcome? outcome = null;
        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(FilePages * Page));
            ulong f = m.Process.Map(FilePages * Page, Prot.ReadWrite, MapFlags.Shared, file);
            var ops = new RecordingNotifierOps();
            m.Watch(f, FilePages * Page, ops);
            m.Touch(f, FilePages, firstValue: 1000);

            ulong anon = m.MapAnon(AnonPages);
            m.Touch(anon, AnonPages);
            int present = m.Mm.CountPresent(f, f + (FilePages * Page));
            int disk = file.DiskPages;

            var values = new int[FilePages];
            for (int i = 0; i < FilePages; i++)
                values[i] = m.Process.ReadInt32(f + ((ulong)i * Page));
            Assert.Equal(Errno.Ok, m.Mm.Munmap(anon, AnonPages * Page));
            outcome = new Outcome(ops.Ranges, m.Kernel.Reclaim.Reclaimed, present, values, ReadEachPage(file), disk);
        });
        return outcome!;
    }

    private static int[] ReadEachPage(SimFile file)
    {
        var values = new int[FilePages];
        var buffer = new byte[4];
        for (int i = 0; i < FilePages; i++)
        {
            Assert.Equal(Errno.Ok, file.Read(buffer, (ulong)i * Page, out int n));
            Assert.Equal(4, n);
            values[i] = BitConverter.ToInt32(buffer);
        }
        return values;
    }

    private static int[] Expected => [.. Enumerable.Range(1000, FilePages)];

    [Fact]
    public void Allocate_UnderPressure_ReclaimsPages()
    {
        Assert.True(FillFileThenAllocate().Reclaimed > 0);
    }

    [Fact]
    public void Allocate_UnderPressure_UnmapsFilePagesFromProcess()
    {
        Assert.True(FillFileThenAllocate().PresentAfter < FilePages);
    }

    [Fact]
    public void Allocate_UnderPressure_NotifierOnMappingReceivesClear()
    {
        var ranges = FillFileThenAllocate().Ranges;

        Assert.Contains(ranges, r => r.Event == NotifierEvent.Clear && r.End - r.Start == Page);
    }

    [Fact]
    public void Allocate_UnderPressure_DirtyPagesWrittenBackToDisk()
    {
        Assert.True(FillFileThenAllocate().DiskPages > 0);
    }

    [Fact]
    public void Allocate_UnderPressure_DataWrittenThroughSharedMappingSurvivesEviction()
    {
        Assert.Equal(Expected, FillFileThenAllocate().FileValues);
    }

    [Fact]
    public void Allocate_UnderPressure_FileReadsBackDataWrittenThroughMapping()
    {
        Assert.Equal(Expected, FillFileThenAllocate().ValuesReadByFile);
    }

    [Fact]
    public void ShrinkNow_MappedFilePages_NotifierReceivesClearForEachEvictedPage()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        ulong f = 0;
        int freed = 0;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(8 * Page));
            f = m.Process.Map(8 * Page, Prot.ReadWrite, MapFlags.Shared, file);
            m.Touch(f, 8);
            m.Watch(f, 8 * Page, ops);
            freed = m.Kernel.Reclaim.ShrinkNow(8);
        });

        Assert.Equal(freed, ops.Ranges.Count(r => r.Event == NotifierEvent.Clear));
    }

    [Fact]
    public void ShrinkNow_MappedFilePages_EvictsThem()
    {
        using var m = TestMachine.Create();
        (int Freed, long Cached) result = default;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(8 * Page));
            ulong f = m.Process.Map(8 * Page, Prot.ReadWrite, MapFlags.Shared, file);
            m.Touch(f, 8);
            result = (m.Kernel.Reclaim.ShrinkNow(8), file.CachedPages);
        });

        Assert.Equal((8, 0L), result);
    }

    [Fact]
    public void ShrinkNow_PrivateMappingOfFile_ReadsFileContentAgainAfterEviction()
    {
        using var m = TestMachine.Create();
        int value = 0;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Write(BitConverter.GetBytes(4242), 0));
            ulong f = m.Process.Map(Page, Prot.Read, MapFlags.Private, file);
            m.Process.ReadInt32(f);
            m.Kernel.Reclaim.ShrinkNow(4);
            value = m.Process.ReadInt32(f);
        });

        Assert.Equal(4242, value);
    }

    [Fact]
    public void ShrinkNow_OnlyAnonymousMemory_ReclaimsNothing()
    {
        using var m = TestMachine.Create();
        int freed = -1;

        m.Run(() =>
        {
            m.Touch(m.MapAnon(8), 8);
            freed = m.Kernel.Reclaim.ShrinkNow(8);
        });

        Assert.Equal(0, freed);
    }

    [Fact]
    public void ShrinkNow_SharedAnonymousMemory_NotReclaimed()
    {
        using var m = TestMachine.Create();
        int present = 0;

        m.Run(() =>
        {
            ulong a = m.Process.Map(4 * Page, Prot.ReadWrite, MapFlags.SharedAnonymous);
            m.Touch(a, 4);
            m.Kernel.Reclaim.ShrinkNow(4);
            present = m.Mm.CountPresent(a, a + (4 * Page));
        });

        Assert.Equal(4, present);
    }

    [Fact]
    public void ShrinkNow_FileMappedByTwoProcesses_BothNotifiersReceiveClear()
    {
        using var m = TestMachine.Create();
        var first = new RecordingNotifierOps();
        var second = new RecordingNotifierOps();

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(Page));
            var other = m.Kernel.CreateProcess("other");
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Shared, file);
            ulong b = other.Map(Page, Prot.ReadWrite, MapFlags.Shared, file);
            m.Process.WriteInt32(a, 1);
            other.ReadInt32(b);
            m.Watch(a, Page, first);
            TestMachine.Watch(other.Mm, b, Page, second);
            Assert.Equal(1, m.Kernel.Reclaim.ShrinkNow(1));
        });

        Assert.Equal((NotifierEvent.Clear, NotifierEvent.Clear), (Assert.Single(first.Ranges).Event, Assert.Single(second.Ranges).Event));
    }
}
