using System.Text;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

public sealed class MadviseTests
{
    private const ulong Page = TestMachine.Page;

    [Fact]
    public void Madvise_UnknownAdvice_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = m.Mm.Madvise(m.MapAnon(1), Page, (Advice)99));

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Madvise_UnalignedAddress_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = m.Mm.Madvise(m.MapAnon(1) + 1, Page, Advice.DontNeed));

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Madvise_ZeroLength_ReturnsOk()
    {
        using var m = TestMachine.Create();
        var err = Errno.EINVAL;

        m.Run(() => err = m.Mm.Madvise(0x1000_0000, 0, Advice.DontNeed));

        Assert.Equal(Errno.Ok, err);
    }

    [Fact]
    public void Madvise_UnmappedRange_ReturnsENOMEM()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = m.Mm.Madvise(0x1000_0000, Page, Advice.DontNeed));

        Assert.Equal(Errno.ENOMEM, err);
    }

    [Fact]
    public void Madvise_HoleInRange_ReturnsENOMEM()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + Page, Page));
            err = m.Mm.Madvise(a, 3 * Page, Advice.DontNeed);
        });

        Assert.Equal(Errno.ENOMEM, err);
    }

    [Fact]
    public void Madvise_DontNeedWithHole_StillDropsMappedParts()
    {
        using var m = TestMachine.Create();
        int present = -1;

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            m.Touch(a, 3);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + Page, Page));
            m.Mm.Madvise(a, 3 * Page, Advice.DontNeed);
            present = m.Mm.CountPresent(a, a + (3 * Page));
        });

        Assert.Equal(0, present);
    }

    [Fact]
    public void Madvise_DontNeedOnPrivateAnonymous_ReadsBackZero()
    {
        using var m = TestMachine.Create();
        int value = -1;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 77);
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a, Page, Advice.DontNeed));
            value = m.Process.ReadInt32(a);
        });

        Assert.Equal(0, value);
    }

    [Fact]
    public void Madvise_DontNeedOnSharedFileMapping_DataSurvivesInFile()
    {
        using var m = TestMachine.Create();
        int value = 0;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(Page));
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Shared, file);
            m.Process.WriteInt32(a, 77);
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a, Page, Advice.DontNeed));
            value = m.Process.ReadInt32(a);
        });

        Assert.Equal(77, value);
    }

    [Fact]
    public void Madvise_FreeOnFileMapping_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Write(Encoding.ASCII.GetBytes("x"), 0));
            ulong a = m.Process.Map(Page, Prot.Read, MapFlags.Private, file);
            err = m.Mm.Madvise(a, Page, Advice.Free);
        });

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Madvise_DontNeed_SendsClearForTheRange()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        ulong a = 0;

        m.Run(() =>
        {
            a = m.MapAnon(4);
            m.Touch(a, 4);
            m.Watch(a, 4 * Page, ops);
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a + Page, 2 * Page, Advice.DontNeed));
        });

        var range = Assert.Single(ops.Ranges);
        Assert.Equal((NotifierEvent.Clear, a + Page, a + (3 * Page)), (range.Event, range.Start, range.End));
    }

    [Fact]
    public void Madvise_HugePage_SetsVmaFlagOnRangeOnly()
    {
        using var m = TestMachine.Create();
        (ulong Start, ulong End, VmFlags Flags)[] layout = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a + Page, Page, Advice.HugePage));
            layout = m.VmaLayout();
        });

        Assert.Equal([false, true, false], layout.Select(v => (v.Flags & VmFlags.HugePage) != 0));
    }

    [Fact]
    public void Madvise_DontNeedOnPrivateFileMapping_DiscardsPrivateChanges()
    {
        using var m = TestMachine.Create();
        int value = 0;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Write(BitConverter.GetBytes(7), 0));
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Private, file);
            m.Process.WriteInt32(a, 8);
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a, Page, Advice.DontNeed));
            value = m.Process.ReadInt32(a);
        });

        Assert.Equal(7, value);
    }
}
