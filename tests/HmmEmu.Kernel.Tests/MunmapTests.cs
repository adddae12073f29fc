using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

public sealed class MunmapTests
{
    private const ulong Page = TestMachine.Page;

    [Theory]
    [InlineData(1UL, Page)]                          // unaligned address
    [InlineData(0UL, 0UL)]                           // zero length
    [InlineData(0UL, 0xFFFF_FFFF_FFFF_F000UL)]       // end beyond user space (overflow)
    public void Munmap_InvalidArguments_ReturnsEINVAL(ulong addrOffset, ulong length)
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            err = m.Mm.Munmap(a + addrOffset, length);
        });

        Assert.Equal(Errno.EINVAL, err);
    }

    [Theory]
    [InlineData(1UL, Page)]
    [InlineData(0UL, 0UL)]
    [InlineData(0UL, 0xFFFF_FFFF_FFFF_F000UL)]
    public void Munmap_InvalidArguments_LeaveVmasUnchanged(ulong addrOffset, ulong length)
    {
        using var m = TestMachine.Create();
        (ulong Start, ulong End, VmFlags Flags)[] before = [], after = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            before = m.VmaLayout();
            m.Mm.Munmap(a + addrOffset, length);
            after = m.VmaLayout();
        });

        Assert.Equal(before, after);
    }

    [Theory]
    [InlineData(1UL, Page)]
    [InlineData(0UL, 0UL)]
    [InlineData(0UL, 0xFFFF_FFFF_FFFF_F000UL)]
    public void Munmap_InvalidArguments_LeavePtesUnchanged(ulong addrOffset, ulong length)
    {
        using var m = TestMachine.Create();
        Pte[] before = [], after = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            before = m.Ptes(a, 2);
            m.Mm.Munmap(a + addrOffset, length);
            after = m.Ptes(a, 2);
        });

        Assert.Equal(before, after);
    }

    [Fact]
    public void Munmap_AddressAboveUserSpace_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = m.Mm.Munmap(Mm.TaskSize + Page, Page));

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Munmap_RangeWithNoMapping_ReturnsOk()
    {
        using var m = TestMachine.Create();
        var err = Errno.EINVAL;

        m.Run(() => err = m.Mm.Munmap(0x1000_0000, 4 * Page));

        Assert.Equal(Errno.Ok, err);
    }

    [Fact]
    public void Munmap_MiddlePage_SplitsVmaInTwo()
    {
        using var m = TestMachine.Create();
        ulong a = 0;
        (ulong Start, ulong End, VmFlags Flags)[] layout = [];

        m.Run(() =>
        {
            a = m.MapAnon(3);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + Page, Page));
            layout = m.VmaLayout();
        });

        Assert.Equal([(a, a + Page), (a + (2 * Page), a + (3 * Page))], layout.Select(v => (v.Start, v.End)));
    }

    [Fact]
    public void Munmap_MiddlePage_NeighboursKeepTheirData()
    {
        using var m = TestMachine.Create();
        (int, int) values = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            m.Touch(a, 3, firstValue: 10);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + Page, Page));
            values = (m.Process.ReadInt32(a), m.Process.ReadInt32(a + (2 * Page)));
        });

        Assert.Equal((10, 12), values);
    }

    [Fact]
    public void Munmap_MappedPages_ClearsTheirPtes()
    {
        using var m = TestMachine.Create();
        int present = -1;

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, 4 * Page));
            present = m.Mm.CountPresent(a, a + (4 * Page));
        });

        Assert.Equal(0, present);
    }

    [Fact]
    public void Munmap_UnalignedLength_UnmapsWholeLastPage()
    {
        using var m = TestMachine.Create();
        ulong a = 0;
        (ulong Start, ulong End, VmFlags Flags)[] layout = [];

        m.Run(() =>
        {
            a = m.MapAnon(3);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page + 1));
            layout = m.VmaLayout();
        });

        Assert.Equal(a + (2 * Page), Assert.Single(layout).Start);
    }

    [Fact]
    public void Munmap_SpanningTwoVmasAndHole_SendsOneUnmapForWholeRange()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        ulong a = 0;

        m.Run(() =>
        {
            a = m.MapAnon(4);
            m.Touch(a, 4);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + Page, Page));
            m.Watch(a, 4 * Page, ops);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, 4 * Page));
        });

        var range = Assert.Single(ops.Ranges);
        Assert.Equal((NotifierEvent.Unmap, a, a + (4 * Page)), (range.Event, range.Start, range.End));
    }

    [Fact]
    public void Munmap_WholeMapping_FreesItsPages()
    {
        using var m = TestMachine.Create();
        ulong freeBefore = 0, freeAfter = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(8);
            freeBefore = m.Kernel.Memory.FreePages;
            m.Touch(a, 8);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, 8 * Page));
            freeAfter = m.Kernel.Memory.FreePages;
        });

        Assert.Equal(freeBefore, freeAfter);
    }

    [Fact]
    public void Munmap_FirstPageOfFileMapping_RestKeepsItsFileOffsets()
    {
        using var m = TestMachine.Create();
        (int, int) values = default;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            for (int i = 0; i < 3; i++)
                Assert.Equal(Errno.Ok, file.Write(BitConverter.GetBytes(500 + i), (ulong)i * Page));
            ulong a = m.Process.Map(3 * Page, Prot.Read, MapFlags.Shared, file);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page));
            values = (m.Process.ReadInt32(a + Page), m.Process.ReadInt32(a + (2 * Page)));
        });

        Assert.Equal((501, 502), values);
    }

    [Fact]
    public void Munmap_DuringUnmapInvalidation_MmapLockIsDowngradedToRead()
    {
        using var m = TestMachine.Create();
        bool? writeLocked = null, locked = null;
        var ops = new RecordingNotifierOps
        {
            OnInvalidate = (n, r) =>
            {
                if (r.Event == NotifierEvent.Unmap)
                {
                    writeLocked = r.Mm.MmapLock.IsWriteLocked;
                    locked = r.Mm.MmapLock.IsLocked;
                }
            },
        };
        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            m.Watch(a, 2 * Page, ops);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page));
        });
        Assert.False(writeLocked);
        Assert.True(locked);
    }
}
