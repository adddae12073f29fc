using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

public sealed class MmapTests
{
    private const ulong Page = TestMachine.Page;

    private static Errno MmapAnon(TestMachine m, ulong addr, ulong length, MapFlags flags, out ulong mapped) =>
        m.Mm.Mmap(addr, length, Prot.ReadWrite, flags, out mapped);

    [Fact]
    public void Mmap_ZeroLength_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = MmapAnon(m, 0, 0, MapFlags.PrivateAnonymous, out _));

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Mmap_NeitherSharedNorPrivate_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = MmapAnon(m, 0, Page, MapFlags.Anonymous, out _));

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Mmap_FixedUnalignedAddress_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = MmapAnon(m, 0x1000_0010, Page, MapFlags.PrivateAnonymous | MapFlags.Fixed, out _));

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Mmap_UnalignedFileOffset_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = m.Mm.Mmap(0, Page, Prot.Read, MapFlags.Shared, out _, m.Kernel.CreateTmpFile(), offset: 100));

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Mmap_FileMappingWithoutFile_ReturnsEBADF()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = MmapAnon(m, 0, Page, MapFlags.Shared, out _));

        Assert.Equal(Errno.EBADF, err);
    }

    [Fact]
    public void Mmap_LengthLargerThanUserSpace_ReturnsENOMEM()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = MmapAnon(m, 0, Mm.TaskSize + Page, MapFlags.PrivateAnonymous, out _));

        Assert.Equal(Errno.ENOMEM, err);
    }

    [Fact]
    public void Mmap_InvalidArguments_CreateNoVma()
    {
        using var m = TestMachine.Create();
        int vmas = -1;

        m.Run(() =>
        {
            MmapAnon(m, 0, 0, MapFlags.PrivateAnonymous, out _);
            MmapAnon(m, 0, Page, MapFlags.Anonymous, out _);
            MmapAnon(m, 0x1000_0010, Page, MapFlags.PrivateAnonymous | MapFlags.Fixed, out _);
            vmas = m.VmaLayout().Length;
        });

        Assert.Equal(0, vmas);
    }

    [Fact]
    public void Mmap_FixedNoReplaceOverExistingMapping_ReturnsEEXIST()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            err = MmapAnon(m, a + Page, Page, MapFlags.PrivateAnonymous | MapFlags.FixedNoReplace, out _);
        });

        Assert.Equal(Errno.EEXIST, err);
    }

    [Fact]
    public void Mmap_FixedNoReplaceOverExistingMapping_LeavesMappingAndDataIntact()
    {
        using var m = TestMachine.Create();
        int value = 0;
        int vmas = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Process.WriteInt32(a + Page, 42);
            MmapAnon(m, a + Page, Page, MapFlags.PrivateAnonymous | MapFlags.FixedNoReplace, out _);
            value = m.Process.ReadInt32(a + Page);
            vmas = m.VmaLayout().Length;
        });

        Assert.Equal((42, 1), (value, vmas));
    }

    [Fact]
    public void Mmap_FixedNoReplaceOnFreeRange_MapsAtAddress()
    {
        using var m = TestMachine.Create();
        ulong mapped = 0;

        m.Run(() => Assert.Equal(Errno.Ok, MmapAnon(m, 0x2000_0000, Page, MapFlags.PrivateAnonymous | MapFlags.FixedNoReplace, out mapped)));

        Assert.Equal(0x2000_0000UL, mapped);
    }

    [Fact]
    public void Mmap_FixedOverExistingMapping_OldContentsReplacedByZeroes()
    {
        using var m = TestMachine.Create();
        int value = -1;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Process.WriteInt32(a + Page, 42);
            Assert.Equal(Errno.Ok, MmapAnon(m, a + Page, Page, MapFlags.PrivateAnonymous | MapFlags.Fixed, out _));
            value = m.Process.ReadInt32(a + Page);
        });

        Assert.Equal(0, value);
    }

    [Fact]
    public void Mmap_FixedOverMirroredMapping_SendsUnmapForReplacedRange()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        ulong a = 0;

        m.Run(() =>
        {
            a = m.MapAnon(2);
            m.Touch(a, 2);
            m.Watch(a, 2 * Page, ops);
            Assert.Equal(Errno.Ok, MmapAnon(m, a + Page, Page, MapFlags.PrivateAnonymous | MapFlags.Fixed, out _));
        });

        var range = Assert.Single(ops.Ranges);
        Assert.Equal((NotifierEvent.Unmap, a + Page, a + (2 * Page)), (range.Event, range.Start, range.End));
    }

    [Fact]
    public void Mmap_UnalignedLength_RoundsUpToWholePages()
    {
        using var m = TestMachine.Create();
        (ulong Start, ulong End, VmFlags Flags)[] layout = [];

        m.Run(() =>
        {
            MmapAnon(m, 0, Page + 1, MapFlags.PrivateAnonymous, out _);
            layout = m.VmaLayout();
        });

        var vma = Assert.Single(layout);
        Assert.Equal(2 * Page, vma.End - vma.Start);
    }

    [Fact]
    public void Mmap_FreeAlignedHint_HonoursHint()
    {
        using var m = TestMachine.Create();
        ulong mapped = 0;

        m.Run(() => MmapAnon(m, 0x3000_0000, Page, MapFlags.PrivateAnonymous, out mapped));

        Assert.Equal(0x3000_0000UL, mapped);
    }

    [Fact]
    public void Mmap_TwoMappings_DoNotOverlap()
    {
        using var m = TestMachine.Create();
        ulong a = 0, b = 0;

        m.Run(() =>
        {
            a = m.MapAnon(4);
            b = m.MapAnon(4);
        });

        Assert.True(a + (4 * Page) <= b || b + (4 * Page) <= a, $"[0x{a:x}, +4 pages) overlaps [0x{b:x}, +4 pages)");
    }

    [Fact]
    public void Mmap_ProtNone_CreatesVmaWithoutAccess()
    {
        using var m = TestMachine.Create();
        (ulong Start, ulong End, VmFlags Flags)[] layout = [];

        m.Run(() =>
        {
            Assert.Equal(Errno.Ok, m.Mm.Mmap(0, Page, Prot.None, MapFlags.PrivateAnonymous, out _));
            layout = m.VmaLayout();
        });

        Assert.Equal(VmFlags.None, Assert.Single(layout).Flags & VmFlags.AccessFlags);
    }

    [Fact]
    public void Mmap_Success_KeepsVmaInvariants()
    {
        using var m = TestMachine.Create();

        m.Run(() =>
        {
            m.MapAnon(3);
            m.MapAnon(1, Prot.Read);
            MmapAnon(m, 0x4000_0000, 5 * Page, MapFlags.PrivateAnonymous | MapFlags.Fixed, out _);
            m.Mm.AssertInvariants();
        });
    }

    [Fact]
    public void Mmap_SharedValidate_CreatesSharedMapping()
    {
        using var m = TestMachine.Create();
        var err = Errno.EINVAL;
        (ulong Start, ulong End, VmFlags Flags)[] layout = [];

        m.Run(() =>
        {
            err = MmapAnon(m, 0, Page, MapFlags.SharedValidate | MapFlags.Anonymous, out _);
            layout = m.VmaLayout();
        });

        Assert.Equal(Errno.Ok, err);
        Assert.True((layout.Single().Flags & VmFlags.Shared) != 0);
    }
}
