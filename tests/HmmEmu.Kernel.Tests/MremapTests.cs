using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

public sealed class MremapTests
{
    private const ulong Page = TestMachine.Page;

    [Fact]
    public void Mremap_MayMove_MovesPagesAndData()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4, firstValue: 10);
            ulong blocker = m.Process.Map(Page, Prot.Read, MapFlags.PrivateAnonymous, addr: a + 4 * Page);
            Assert.Equal(a + 4 * Page, blocker);
            var pfn0 = m.Mm.GetPte(a).Pfn;

            Assert.Equal(Errno.Ok, m.Mm.Mremap(a, 4 * Page, 8 * Page, MremapFlags.MayMove, 0, out ulong moved));

            Assert.NotEqual(a, moved);
            Assert.Equal(pfn0, m.Mm.GetPte(moved).Pfn);
            for (int i = 0; i < 4; i++)
                Assert.Equal(10 + i, m.Process.ReadInt32(moved + (ulong)i * Page));
            Assert.Equal(0, m.Process.ReadInt32(moved + 7 * Page));
            Assert.Throws<SegmentationFaultException>(() => m.Process.ReadInt32(a));
            m.Mm.AssertInvariants();
        });
    }

    [Fact]
    public void Mremap_Move_NotifierSeesUnmapOfOldRangeFirst()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            m.Watch(a, 2 * Page, ops);
            Assert.Equal(Errno.Ok, m.Mm.Mremap(a, 2 * Page, 2 * Page, MremapFlags.MayMove | MremapFlags.DontUnmap, 0, out ulong moved));
            Assert.NotEqual(a, moved);
            Assert.True(m.Mm.GetPte(a).IsNone);
            Assert.Equal(1, m.Process.ReadInt32(moved));
            Assert.Equal(0, m.Process.ReadInt32(a));          // DONTUNMAP: the old range stays, empty
        });
        Assert.Equal(NotifierEvent.Unmap, ops.Ranges[0].Event);
        Assert.Equal(2 * Page, ops.Ranges[0].End - ops.Ranges[0].Start);
    }

    [Fact]
    public void Mremap_ShrinkInPlace_UnmapsTail()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Touch(a, 4);
            Assert.Equal(Errno.Ok, m.Mm.Mremap(a, 4 * Page, 2 * Page, MremapFlags.None, 0, out ulong r));
            Assert.Equal(a, r);
            Assert.Equal(2, m.Process.ReadInt32(a + Page));
            Assert.True(m.Mm.GetPte(a + 2 * Page).IsNone);
            Assert.Throws<SegmentationFaultException>(() => m.Process.ReadInt32(a + 3 * Page));
        });
    }

    [Fact]
    public void Mremap_GrowWithoutRoomOrMayMove_ReturnsENOMEMAndChangesNothing()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            m.Process.Map(Page, Prot.Read, MapFlags.PrivateAnonymous, addr: a + 2 * Page);
            var before = m.VmaLayout();
            Assert.Equal(Errno.ENOMEM, m.Mm.Mremap(a, 2 * Page, 4 * Page, MremapFlags.None, 0, out _));
            Assert.Equal(before, m.VmaLayout());
            Assert.Equal(2, m.Process.ReadInt32(a + Page));
        });
    }

    [Theory]
    [InlineData(0x1001UL, 4096UL, 4096UL, MremapFlags.MayMove)]              // unaligned
    [InlineData(0x10000UL, 4096UL, 0UL, MremapFlags.MayMove)]                // zero new length
    [InlineData(0x10000UL, 4096UL, 4096UL, MremapFlags.Fixed)]               // FIXED without MAYMOVE
    [InlineData(0x10000UL, 4096UL, 8192UL, MremapFlags.MayMove | MremapFlags.DontUnmap)] // DONTUNMAP resizing
    public void Mremap_BadArguments_ReturnsEINVAL(ulong addr, ulong oldLen, ulong newLen, MremapFlags flags)
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;
        m.Run(() => err = m.Mm.Mremap(addr, oldLen, newLen, flags, 0, out _));
        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Mremap_NotMapped_ReturnsEFAULT()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;
        m.Run(() => err = m.Mm.Mremap(0x4000_0000, Page, Page, MremapFlags.MayMove, 0, out _));
        Assert.Equal(Errno.EFAULT, err);
    }

    [Fact]
    public void Mremap_FixedTarget_ReplacesWhatWasThere()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            ulong b = m.MapAnon(1);
            m.Touch(a, 1, firstValue: 5);
            m.Touch(b, 1, firstValue: 9);
            Assert.Equal(Errno.Ok, m.Mm.Mremap(a, Page, Page, MremapFlags.MayMove | MremapFlags.Fixed, b, out ulong r));
            Assert.Equal(b, r);
            Assert.Equal(5, m.Process.ReadInt32(b));
            m.Mm.AssertInvariants();
        });
    }
}
