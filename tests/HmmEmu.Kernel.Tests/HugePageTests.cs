using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

public sealed class HugePageTests
{
    private const ulong Page = TestMachine.Page;
    private const ulong TwoMeg = 1UL << 21;
    private const int PagesPerHuge = 512;

    private static ulong MapThp(TestMachine m)
    {
        ulong a = m.Process.Map(2 * TwoMeg, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        ulong block = (a + TwoMeg - 1) & ~(TwoMeg - 1);
        Assert.Equal(Errno.Ok, m.Mm.Madvise(block, TwoMeg, Advice.HugePage));
        return block;
    }

    [Fact]
    public void WriteFault_MadvisedHugeBlock_MapsWholeContiguousHugePage()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            ulong block = MapThp(m);
            m.Process.WriteInt32(block + 5 * Page, 42);
            var first = m.Mm.GetPte(block);
            Assert.True(first.IsHuge, first.ToString());
            for (int i = 0; i < PagesPerHuge; i++)
            {
                var pte = m.Mm.GetPte(block + (ulong)i * Page);
                Assert.True(pte.IsHuge && pte.IsWritable, $"page {i}: {pte}");
                Assert.Equal(first.Pfn + (ulong)i, pte.Pfn);
            }
            Assert.Equal(0, m.Process.ReadInt32(block));
            Assert.Equal(42, m.Process.ReadInt32(block + 5 * Page));
        });
    }

    [Fact]
    public void WriteFault_NoHugePageAdvice_MapsOneSmallPage()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            ulong block = MapThp(m);
            Assert.Equal(Errno.Ok, m.Mm.Madvise(block, TwoMeg, Advice.NoHugePage));
            m.Process.WriteInt32(block, 1);
            Assert.False(m.Mm.GetPte(block).IsHuge);
            Assert.True(m.Mm.GetPte(block + Page).IsNone);
        });
    }

    [Fact]
    public void RangeFault_HugePage_ReportsOrderNine()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            ulong block = MapThp(m);
            m.Process.WriteInt32(block, 1);
            var n = m.Watch(block, TwoMeg, new RecordingNotifierOps());
            var r = new HmmRange(n, block, block + 4 * Page) { NotifierSeq = n.ReadBegin() };
            using (m.Mm.MmapReadLock())
                Assert.Equal(Errno.Ok, Hmm.RangeFault(r));
            Assert.All(r.HmmPfns, e => Assert.Equal(9, HmmPfn.MapOrder(e)));
            Assert.All(r.HmmPfns, e => Assert.True((e & HmmPfn.Write) != 0));
        });
    }

    [Fact]
    public void Munmap_OnePageOfHugePage_SplitsAndKeepsTheRest()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        m.Run(() =>
        {
            ulong block = MapThp(m);
            for (int i = 0; i < 4; i++)
                m.Process.WriteInt32(block + (ulong)i * Page, 100 + i);
            m.Watch(block, TwoMeg, ops);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(block + Page, Page));
            Assert.True(m.Mm.GetPte(block + Page).IsNone);
            for (int i = 0; i < PagesPerHuge; i++)
            {
                if (i == 1)
                    continue;
                var pte = m.Mm.GetPte(block + (ulong)i * Page);
                Assert.True(pte.IsPresent && !pte.IsHuge, $"page {i}: {pte}");
            }
            Assert.Equal(100, m.Process.ReadInt32(block));
            Assert.Equal(103, m.Process.ReadInt32(block + 3 * Page));
        });
        Assert.Equal(NotifierEvent.Unmap, ops.Ranges.Single().Event);
    }

    [Fact]
    public void MunmapAll_HugePage_FreesEveryFrame()
    {
        using var m = TestMachine.Create();
        ulong before = 0, after = 0;
        m.Run(() =>
        {
            ulong block = MapThp(m);
            before = m.Kernel.Memory.FreePages;
            m.Process.WriteInt32(block, 1);
            Assert.Equal(before - PagesPerHuge, m.Kernel.Memory.FreePages);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(block, TwoMeg));
            after = m.Kernel.Memory.FreePages;
        });
        Assert.Equal(before, after);
    }

    [Fact]
    public void Fork_HugePageThenChildWrites_ChildCopiesOnePageParentKeepsData()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            ulong block = MapThp(m);
            m.Process.WriteInt32(block, 7);
            var child = m.Process.Fork();
            Assert.True(m.Mm.GetPte(block).IsHuge && !m.Mm.GetPte(block).IsWritable);
            child.StartThread("child", () =>
            {
                child.WriteInt32(block, 8);
                Assert.Equal(8, child.ReadInt32(block));
                Assert.False(child.Mm.GetPte(block).IsHuge);
                child.Exit();
            }).Join();
            Assert.Equal(7, m.Process.ReadInt32(block));
            m.Process.WriteInt32(block + Page, 9);
            Assert.Equal(9, m.Process.ReadInt32(block + Page));
            Assert.Equal(7, m.Process.ReadInt32(block));
        });
    }

    [Fact]
    public void MmapHugeTlb_RoundsToTwoMegAndAligns()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            Assert.Equal(Errno.Ok, m.Mm.Mmap(0, Page, Prot.ReadWrite, MapFlags.PrivateAnonymous | MapFlags.HugeTlb, out ulong a));
            Assert.Equal(0UL, a & (TwoMeg - 1));
            var vma = m.VmaLayout().Single(v => v.Start == a);
            Assert.Equal(a + TwoMeg, vma.End);
            Assert.True((vma.Flags & VmFlags.HugeTlb) != 0);
            m.Process.ReadInt32(a + 100 * Page);               // even a read maps the whole huge page
            Assert.True(m.Mm.GetPte(a).IsHuge);
        });
    }

    [Fact]
    public void HugeTlb_UnalignedMunmapOrMprotect_ReturnsEINVALAndChangesNothing()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            Assert.Equal(Errno.Ok, m.Mm.Mmap(0, TwoMeg, Prot.ReadWrite, MapFlags.PrivateAnonymous | MapFlags.HugeTlb, out ulong a));
            m.Process.WriteInt32(a, 3);
            Assert.Equal(Errno.EINVAL, m.Mm.Munmap(a + Page, Page));
            Assert.Equal(Errno.EINVAL, m.Mm.Mprotect(a, Page, Prot.Read));
            Assert.True(m.Mm.GetPte(a + Page).IsHuge);
            Assert.Equal(3, m.Process.ReadInt32(a));
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, TwoMeg, Prot.Read));
            Assert.True(m.Mm.GetPte(a).IsHuge && !m.Mm.GetPte(a).IsWritable);
        });
    }

    [Fact]
    public void MmapHugeTlb_FixedUnalignedOrShared_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        m.Run(() =>
        {
            Assert.Equal(Errno.EINVAL, m.Mm.Mmap(0x4000_1000, TwoMeg, Prot.ReadWrite, MapFlags.PrivateAnonymous | MapFlags.HugeTlb | MapFlags.Fixed, out _));
            Assert.Equal(Errno.EINVAL, m.Mm.Mmap(0, TwoMeg, Prot.ReadWrite, MapFlags.SharedAnonymous | MapFlags.HugeTlb, out _));
        });
    }
}
