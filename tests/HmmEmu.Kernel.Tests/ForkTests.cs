using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

public sealed class ForkTests
{
    private const ulong Page = TestMachine.Page;

    [Fact]
    public void Fork_ParentWritesAfterFork_ChildSeesOldValue()
    {
        using var m = TestMachine.Create();
        int childValue = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            var child = m.Process.Fork();
            m.Process.WriteInt32(a, 2);
            childValue = child.ReadInt32(a);
        });

        Assert.Equal(1, childValue);
    }

    // Found by the coherence suite: fork gave a device-exclusive page back to the parent as an ordinary readable entry,
    // although an mprotect(PROT_NONE) since had taken all access away (the exclusive entry does not record
    // readability); the parent could then read a PROT_NONE page. Linux restores it with the VMA's vm_page_prot.
    [Theory]
    [InlineData(Prot.None, false, false)]
    [InlineData(Prot.Read, true, false)]
    [InlineData(Prot.ReadWrite, true, false)]     // readable; write-protected for COW like every private page at fork
    public void Fork_DeviceExclusivePageAfterMprotect_ComesBackWithTheVmaProtection(Prot prot, bool readable, bool writable)
    {
        using var m = TestMachine.Create();
        Pte after = default;
        Errno read = Errno.EIO;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            ulong pfn;
            using (m.Process.Mm.MmapReadLock())
                Assert.Equal(Errno.Ok, m.Process.Mm.MakeDeviceExclusive(a, new object(), out pfn));
            m.Kernel.Memory.UnlockPage(pfn);
            m.Kernel.Memory.PutPage(pfn);
            Assert.Equal(Errno.Ok, m.Process.Mm.Mprotect(a, Page, prot));
            m.Process.Fork();
            after = m.Process.Mm.GetPte(a);
            read = m.Process.Mm.CopyFromUser(a, new byte[4]);
        });

        Assert.False(after.IsDeviceExclusive);
        Assert.Equal(readable, after.IsReadable);
        Assert.Equal(writable, after.IsWritable);
        Assert.Equal(readable ? Errno.Ok : Errno.EFAULT, read);
    }

    [Fact]
    public void Fork_ChildWritesAfterFork_ParentSeesOldValue()
    {
        using var m = TestMachine.Create();
        int parentValue = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            var child = m.Process.Fork();
            child.WriteInt32(a, 3);
            parentValue = m.Process.ReadInt32(a);
        });

        Assert.Equal(1, parentValue);
    }

    [Fact]
    public void Fork_BothWriteAfterFork_EachSeesOwnValue()
    {
        using var m = TestMachine.Create();
        (int Parent, int Child) values = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            var child = m.Process.Fork();
            child.WriteInt32(a, 3);
            m.Process.WriteInt32(a, 2);
            values = (m.Process.ReadInt32(a), child.ReadInt32(a));
        });

        Assert.Equal((2, 3), values);
    }

    [Fact]
    public void Fork_ParentWritesAfterFork_ParentGetsNewPageChildKeepsOld()
    {
        using var m = TestMachine.Create();
        (ulong Before, ulong ParentAfter, ulong ChildAfter) pfns = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            ulong before = m.Mm.GetPte(a).Pfn;
            var child = m.Process.Fork();
            m.Process.WriteInt32(a, 2);
            pfns = (before, m.Mm.GetPte(a).Pfn, child.Mm.GetPte(a).Pfn);
        });

        Assert.True(pfns.ParentAfter != pfns.Before && pfns.ChildAfter == pfns.Before, $"pfns {pfns}");
    }

    [Fact]
    public void Fork_SharedAnonymousMapping_ChildSeesParentWriteAfterFork()
    {
        using var m = TestMachine.Create();
        int childValue = 0;

        m.Run(() =>
        {
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.SharedAnonymous);
            m.Process.WriteInt32(a, 1);
            var child = m.Process.Fork();
            m.Process.WriteInt32(a, 2);
            childValue = child.ReadInt32(a);
        });

        Assert.Equal(2, childValue);
    }

    [Fact]
    public void Fork_SharedAnonymousMapping_ParentSeesChildWrite()
    {
        using var m = TestMachine.Create();
        int parentValue = 0;

        m.Run(() =>
        {
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.SharedAnonymous);
            m.Process.WriteInt32(a, 1);
            var child = m.Process.Fork();
            child.WriteInt32(a, 5);
            parentValue = m.Process.ReadInt32(a);
        });

        Assert.Equal(5, parentValue);
    }

    [Fact]
    public void Fork_PrivateWritablePages_ParentPtesBecomeReadOnly()
    {
        using var m = TestMachine.Create();
        Pte[] ptes = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            m.Touch(a, 3);
            m.Process.Fork();
            ptes = m.Ptes(a, 3);
        });

        Assert.All(ptes, p => Assert.True(p.IsPresent && !p.IsWritable, $"expected read-only, got {p}"));
    }

    [Fact]
    public void Fork_PrivateWritablePages_ChildPtesAreReadOnly()
    {
        using var m = TestMachine.Create();
        Pte[] ptes = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            var child = m.Process.Fork();
            ptes = [child.Mm.GetPte(a), child.Mm.GetPte(a + Page)];
        });

        Assert.All(ptes, p => Assert.True(p.IsPresent && !p.IsWritable, $"expected read-only, got {p}"));
    }

    [Fact]
    public void Fork_NotifierOnParent_ReceivesProtectionPageForWholeVma()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        ulong a = 0;

        m.Run(() =>
        {
            a = m.MapAnon(4);
            m.Touch(a, 1);
            m.Watch(a, 4 * Page, ops);
            m.Process.Fork();
        });

        var range = Assert.Single(ops.Ranges);
        Assert.Equal((NotifierEvent.ProtectionPage, a, a + (4 * Page)), (range.Event, range.Start, range.End));
    }

    [Fact]
    public void Fork_MappingNeverWritten_SendsNoInvalidation()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();

        m.Run(() =>
        {
            ulong a = m.MapAnon(4);
            m.Watch(a, 4 * Page, ops);
            m.Process.Fork();
        });

        Assert.Empty(ops.Ranges);
    }

    [Fact]
    public void Fork_SharedMapping_SendsNoInvalidation()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();

        m.Run(() =>
        {
            ulong a = m.Process.Map(2 * Page, Prot.ReadWrite, MapFlags.SharedAnonymous);
            m.Touch(a, 2);
            m.Watch(a, 2 * Page, ops);
            m.Process.Fork();
        });

        Assert.Empty(ops.Ranges);
    }

    [Fact]
    public void Fork_Child_HasSameVmaLayout()
    {
        using var m = TestMachine.Create();
        (ulong, ulong)[] parent = [], child = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Process.Map(Page, Prot.Read, MapFlags.SharedAnonymous);
            m.Process.WriteInt32(a, 1);
            var c = m.Process.Fork();
            parent = [.. m.VmaLayout().Select(v => (v.Start, v.End))];
            using (c.Mm.MmapReadLock())
                child = [.. c.Mm.Vmas().Select(v => (v.Start, v.End))];
        });

        Assert.Equal(parent, child);
    }

    [Fact]
    public void Fork_ChildExits_ParentDataIntact()
    {
        using var m = TestMachine.Create();
        int value = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 11);
            var child = m.Process.Fork();
            child.WriteInt32(a, 12);
            child.Exit();
            value = m.Process.ReadInt32(a);
        });

        Assert.Equal(11, value);
    }

    [Fact]
    public void Fork_ChildThreadReadsWhileParentWrites_SeesValueAtFork()
    {
        using var m = TestMachine.Create();
        int childValue = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 21);
            var child = m.Process.Fork();
            var t = child.StartThread("reader", () => childValue = child.ReadInt32(a));
            m.Process.WriteInt32(a, 22);
            t.Join();
        });

        Assert.Equal(21, childValue);
    }

    [Fact]
    public void Fork_PrivateFileMappingWrittenBeforeFork_ChildSeesPrivateCopy()
    {
        using var m = TestMachine.Create();
        int childValue = 0;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Write(BitConverter.GetBytes(1), 0));
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Private, file);
            m.Process.WriteInt32(a, 2);
            var child = m.Process.Fork();
            childValue = child.ReadInt32(a);
        });

        Assert.Equal(2, childValue);
    }

    [Fact]
    public void Fork_ChildExited_ParentWriteReusesPageWithoutInvalidation()
    {
        using var m = TestMachine.Create();
        var ops = new RecordingNotifierOps();
        (ulong Before, ulong After) pfns = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            var child = m.Process.Fork();
            child.Exit();
            m.Watch(a, Page, ops);
            ulong before = m.Mm.GetPte(a).Pfn;
            m.Process.WriteInt32(a, 2);
            pfns = (before, m.Mm.GetPte(a).Pfn);
        });

        Assert.Equal((pfns.Before, 0), (pfns.After, ops.Ranges.Count));
    }
}
