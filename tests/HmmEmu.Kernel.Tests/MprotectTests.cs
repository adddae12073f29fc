using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

public sealed class MprotectTests
{
    private const ulong Page = TestMachine.Page;

    // Found by the coherence suite: the last VMA of the range already had the protection, so it was not split, and
    // the loop found the same VMA (starting before the end) again and again.
    [Fact]
    public void Mprotect_RangeEndingInsideVmaThatAlreadyHasTheProtection_Returns()
    {
        using var m = TestMachine.Create();
        var err = Errno.EINVAL;
        IReadOnlyList<Vma> vmas = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(7);
            m.Mm.Mprotect(a + 3 * Page, 4 * Page, Prot.None);
            err = m.Mm.Mprotect(a, 4 * Page, Prot.None);
            using (m.Mm.MmapReadLock())
                vmas = m.Mm.Vmas();
        });

        Assert.Equal(Errno.Ok, err);
        Assert.All(vmas, v => Assert.Equal(VmFlags.None, v.Flags & (VmFlags.Read | VmFlags.Write)));
    }

    [Fact]
    public void Mprotect_UnalignedAddress_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = m.Mm.Mprotect(m.MapAnon(2) + 8, Page, Prot.Read));

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Mprotect_UnknownProtBits_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = m.Mm.Mprotect(m.MapAnon(1), Page, (Prot)0x40));

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void Mprotect_ZeroLengthOnUnmappedAddress_ReturnsOk()
    {
        using var m = TestMachine.Create();
        var err = Errno.EINVAL;

        m.Run(() => err = m.Mm.Mprotect(0x1000_0000, 0, Prot.Read));

        Assert.Equal(Errno.Ok, err);
    }

    [Fact]
    public void Mprotect_UnmappedRange_ReturnsENOMEM()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = m.Mm.Mprotect(0x1000_0000, Page, Prot.Read));

        Assert.Equal(Errno.ENOMEM, err);
    }

    [Fact]
    public void Mprotect_HoleInMiddle_ReturnsENOMEM()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + Page, Page));
            err = m.Mm.Mprotect(a, 3 * Page, Prot.Read);
        });

        Assert.Equal(Errno.ENOMEM, err);
    }

    [Fact]
    public void Mprotect_HoleInMiddle_PartBeforeHoleIsChangedAsInLinux()
    {
        using var m = TestMachine.Create();
        (ulong Start, ulong End, VmFlags Flags)[] layout = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + Page, Page));
            m.Mm.Mprotect(a, 3 * Page, Prot.Read);
            layout = m.VmaLayout();
        });

        Assert.Equal([VmFlags.Read, VmFlags.Read | VmFlags.Write], layout.Select(v => v.Flags & VmFlags.AccessFlags));
    }

    [Fact]
    public void Mprotect_RangeStartingInHole_ReturnsENOMEM()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page));
            err = m.Mm.Mprotect(a, 2 * Page, Prot.Read);
        });

        Assert.Equal(Errno.ENOMEM, err);
    }

    [Fact]
    public void Mprotect_RangeWrapsAround_ReturnsENOMEM()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() => err = m.Mm.Mprotect(m.MapAnon(1), ulong.MaxValue - Page, Prot.Read));

        Assert.Equal(Errno.ENOMEM, err);
    }

    [Fact]
    public void Mprotect_ReadOnly_WriteThrowsSegmentationFault()
    {
        using var m = TestMachine.Create();

        Assert.Throws<SegmentationFaultException>(() => m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, Page, Prot.Read));
            m.Process.WriteInt32(a, 2);
        }));
    }

    [Fact]
    public void Mprotect_ReadOnly_DataStillReadable()
    {
        using var m = TestMachine.Create();
        int value = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 5);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, Page, Prot.Read));
            value = m.Process.ReadInt32(a);
        });

        Assert.Equal(5, value);
    }

    [Fact]
    public void Mprotect_ReadOnly_PteLosesWrite()
    {
        using var m = TestMachine.Create();
        Pte pte = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 5);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, Page, Prot.Read));
            pte = m.Mm.GetPte(a);
        });

        Assert.True(pte.IsPresent && !pte.IsWritable, $"expected a read-only entry, got {pte}");
    }

    [Fact]
    public void Mprotect_ProtNone_ReadThrowsSegmentationFault()
    {
        using var m = TestMachine.Create();

        Assert.Throws<SegmentationFaultException>(() => m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, Page, Prot.None));
            m.Process.ReadInt32(a);
        }));
    }

    [Fact]
    public void Mprotect_BackToReadWrite_WriteSucceedsAndKeepsData()
    {
        using var m = TestMachine.Create();
        int value = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 5);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, Page, Prot.None));
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, Page, Prot.ReadWrite));
            m.Process.WriteInt32(a + 4, 6);
            value = m.Process.ReadInt32(a);
        });

        Assert.Equal(5, value);
    }

    [Fact]
    public void Mprotect_MappedPages_SendsProtectionVmaForTheRange()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        ulong a = 0;

        m.Run(() =>
        {
            a = m.MapAnon(2);
            m.Touch(a, 2);
            m.Watch(a, 2 * Page, ops);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, 2 * Page, Prot.Read));
        });

        var range = Assert.Single(ops.Ranges);
        Assert.Equal((NotifierEvent.ProtectionVma, a, a + (2 * Page)), (range.Event, range.Start, range.End));
    }

    [Fact]
    public void Mprotect_NoPageTables_SendsNoInvalidation()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Watch(a, 2 * Page, ops);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, 2 * Page, Prot.Read));
        });

        Assert.Empty(ops.Ranges);
    }

    [Fact]
    public void Mprotect_FirstPageOfFileMapping_RestKeepsItsFileOffsets()
    {
        using var m = TestMachine.Create();
        int value = 0;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            for (int i = 0; i < 3; i++)
                Assert.Equal(Errno.Ok, file.Write(BitConverter.GetBytes(500 + i), (ulong)i * Page));
            ulong a = m.Process.Map(3 * Page, Prot.ReadWrite, MapFlags.Shared, file);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, Page, Prot.Read));
            value = m.Process.ReadInt32(a + (2 * Page));
        });

        Assert.Equal(502, value);
    }

    [Fact]
    public void Mprotect_MiddleOfVma_SplitsIntoThree()
    {
        using var m = TestMachine.Create();
        (ulong Start, ulong End, VmFlags Flags)[] layout = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a + Page, Page, Prot.Read));
            layout = m.VmaLayout();
        });

        Assert.Equal([VmFlags.Read | VmFlags.Write, VmFlags.Read, VmFlags.Read | VmFlags.Write], layout.Select(v => v.Flags & VmFlags.AccessFlags));
    }

    [Fact]
    public void Mprotect_FirstOfTwoMergedAnonymousMappings_ReturnsOk()
    {
        using var m = TestMachine.Create();
        var err = Errno.EINVAL;

        m.Run(() =>
        {
            ulong first = m.MapAnon(1);
            ulong second = m.MapAnon(1);
            Assert.Equal(first - Page, second);
            err = m.Mm.Mprotect(first, Page, Prot.Read);
        });

        Assert.Equal(Errno.Ok, err);
    }
}
