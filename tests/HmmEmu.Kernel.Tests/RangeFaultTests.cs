using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

public sealed class RangeFaultTests
{
    private const ulong Page = TestMachine.Page;

    /// <summary>Runs hmm_range_fault once over [start, end) with a fresh ReadBegin, under the mmap read lock.</summary>
    private static (Errno Err, ulong[] Pfns) Fault(MmuIntervalNotifier n, ulong start, ulong end, ulong defaultFlags, ulong[]? input = null)
    {
        var range = new HmmRange(n, start, end) { NotifierSeq = n.ReadBegin(), DefaultFlags = defaultFlags };
        input?.CopyTo(range.HmmPfns, 0);
        Errno err;
        using (n.Mm!.MmapReadLock())
            err = Hmm.RangeFault(range);
        return (err, range.HmmPfns);
    }

    private static string Describe(ulong entry) =>
        $"0x{entry:x16} (valid={(entry & HmmPfn.Valid) != 0} write={(entry & HmmPfn.Write) != 0} error={(entry & HmmPfn.Error) != 0} pfn=0x{HmmPfn.ToPfn(entry):x})";

    [Fact]
    public void RangeFault_PresentWritablePage_ReturnsValidWriteAndPfn()
    {
        using var m = TestMachine.Create();
        ulong entry = 0, cpuPfn = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + Page, 0);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[0];
            cpuPfn = m.Mm.GetPte(a).Pfn;
        });

        Assert.Equal(HmmPfn.Valid | HmmPfn.Write | cpuPfn, entry);
    }

    [Fact]
    public void RangeFault_ZeroPageAfterRead_ReturnsValidWithoutWriteAndPfnZero()
    {
        using var m = TestMachine.Create();
        ulong entry = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.ReadInt32(a);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + Page, 0);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[0];
        });

        Assert.Equal(HmmPfn.Valid | PhysicalMemory.ZeroPfn, entry);
    }

    [Fact]
    public void RangeFault_ReadOnlyPresentPage_ReturnsValidWithoutWrite()
    {
        using var m = TestMachine.Create();
        ulong entry = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            Assert.Equal(Errno.Ok, m.Mm.Mprotect(a, Page, Prot.Read));
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + Page, HmmPfn.ReqFault);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[0];
        });

        Assert.True((entry & (HmmPfn.Valid | HmmPfn.Write)) == HmmPfn.Valid, Describe(entry));
    }

    [Fact]
    public void RangeFault_UntouchedPageNoFaultRequested_ReturnsZeroEntry()
    {
        using var m = TestMachine.Create();
        ulong entry = 1;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + Page, 0);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[0];
        });

        Assert.Equal(0UL, entry);
    }

    [Fact]
    public void RangeFault_HoleNoFaultRequested_ReturnsError()
    {
        using var m = TestMachine.Create();
        ulong entry = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + Page, Page));
            var n = m.Watch(a, 3 * Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + (3 * Page), 0);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[1];
        });

        Assert.Equal(HmmPfn.Error, entry);
    }

    [Fact]
    public void RangeFault_HoleFaultRequested_ReturnsEFAULT()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + Page, Page));
            var n = m.Watch(a, 3 * Page, new RecordingNotifierOps());
            err = Fault(n, a, a + (3 * Page), HmmPfn.ReqFault).Err;
        });

        Assert.Equal(Errno.EFAULT, err);
    }

    [Fact]
    public void RangeFault_ProtNoneVmaNoFaultRequested_ReturnsError()
    {
        using var m = TestMachine.Create();
        ulong entry = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1, Prot.None);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + Page, 0);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[0];
        });

        Assert.Equal(HmmPfn.Error, entry);
    }

    [Fact]
    public void RangeFault_ProtNoneVmaFaultRequested_ReturnsEFAULT()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1, Prot.None);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            err = Fault(n, a, a + Page, HmmPfn.ReqFault).Err;
        });

        Assert.Equal(Errno.EFAULT, err);
    }

    [Fact]
    public void RangeFault_WriteRequestOnReadOnlyVma_ReturnsEPERM()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1, Prot.Read);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            err = Fault(n, a, a + Page, HmmPfn.ReqFault | HmmPfn.ReqWrite).Err;
        });

        Assert.Equal(Errno.EPERM, err);
    }

    [Fact]
    public void RangeFault_FaultRequestedOnUntouchedPage_FaultsItIn()
    {
        using var m = TestMachine.Create();
        Pte pte = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            var n = m.Watch(a, 2 * Page, new RecordingNotifierOps());
            Assert.Equal(Errno.Ok, Fault(n, a, a + (2 * Page), HmmPfn.ReqFault | HmmPfn.ReqWrite).Err);
            pte = m.Mm.GetPte(a + Page);
        });

        Assert.True(pte.IsPresent && pte.IsWritable, $"expected a writable entry, got {pte}");
    }

    [Fact]
    public void RangeFault_WriteFaultOnUntouchedPage_ReturnsValidWriteOfTheCpuPage()
    {
        using var m = TestMachine.Create();
        ulong entry = 0, cpuPfn = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + Page, HmmPfn.ReqFault | HmmPfn.ReqWrite);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[0];
            cpuPfn = m.Mm.GetPte(a).Pfn;
        });

        Assert.Equal(HmmPfn.Valid | HmmPfn.Write | cpuPfn, entry);
    }

    [Fact]
    public void RangeFault_ReadFaultOnUntouchedPage_MapsZeroPage()
    {
        using var m = TestMachine.Create();
        ulong entry = 1;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + Page, HmmPfn.ReqFault);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[0];
        });

        Assert.Equal(HmmPfn.Valid | PhysicalMemory.ZeroPfn, entry);
    }

    [Fact]
    public void RangeFault_WriteFaultOnZeroPage_ReturnsEBUSYBecauseCowBreakInvalidated()
    {
        // Linux: the COW break of the zero page sends MMU_NOTIFY_CLEAR for the page, which moves the notifier's
        // sequence, so hmm_range_fault's retry check hands -EBUSY back to the caller.
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.ReadInt32(a);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            err = Fault(n, a, a + Page, HmmPfn.ReqFault | HmmPfn.ReqWrite).Err;
        });

        Assert.Equal(Errno.EBUSY, err);
    }

    [Fact]
    public void RangeFault_RetryAfterEBUSY_Succeeds()
    {
        using var m = TestMachine.Create();
        ulong entry = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.ReadInt32(a);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            Assert.Equal(Errno.EBUSY, Fault(n, a, a + Page, HmmPfn.ReqFault | HmmPfn.ReqWrite).Err);
            var (err, pfns) = Fault(n, a, a + Page, HmmPfn.ReqFault | HmmPfn.ReqWrite);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[0];
        });

        Assert.True((entry & (HmmPfn.Valid | HmmPfn.Write)) == (HmmPfn.Valid | HmmPfn.Write), Describe(entry));
    }

    [Fact]
    public void RangeFault_InvalidationAfterReadBegin_ReturnsEBUSY()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Touch(a, 2);
            var n = m.Watch(a, 2 * Page, new RecordingNotifierOps());
            var range = new HmmRange(n, a, a + (2 * Page)) { NotifierSeq = n.ReadBegin() };
            Assert.Equal(Errno.Ok, m.Mm.Madvise(a + Page, Page, Advice.DontNeed));
            using (m.Mm.MmapReadLock())
                err = Hmm.RangeFault(range);
        });

        Assert.Equal(Errno.EBUSY, err);
    }

    [Fact]
    public void RangeFault_InOutFlags_PreservedInOutput()
    {
        using var m = TestMachine.Create();
        ulong[] entries = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            m.Process.WriteInt32(a, 1);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + (2 * Page), Page));
            var n = m.Watch(a, 3 * Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + (3 * Page), 0, [HmmPfn.DmaMapped, HmmPfn.P2pDma, HmmPfn.DmaMapped | HmmPfn.P2pDmaBus]);
            Assert.Equal(Errno.Ok, err);
            entries = pfns;
        });

        Assert.Equal([HmmPfn.DmaMapped, HmmPfn.P2pDma, HmmPfn.DmaMapped | HmmPfn.P2pDmaBus], entries.Select(e => e & HmmPfn.InOutFlags));
    }

    [Fact]
    public void RangeFault_InputRequestBitsNotInOutput_AreReplaced()
    {
        using var m = TestMachine.Create();
        ulong entry = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1, Prot.None);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + Page, 0, [HmmPfn.Write | 0x1234]);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[0];
        });

        Assert.Equal(HmmPfn.Error, entry);
    }

    [Fact]
    public void RangeFault_PerPageRequestThroughMask_FaultsRequestedPage()
    {
        using var m = TestMachine.Create();
        Pte pte = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Process.ReadInt32(a);
            m.Process.ReadInt32(a + Page);
            var n = m.Watch(a, 2 * Page, new RecordingNotifierOps());
            var range = new HmmRange(n, a, a + (2 * Page))
            {
                NotifierSeq = n.ReadBegin(),
                PfnFlagsMask = HmmPfn.ReqFault | HmmPfn.ReqWrite,
                HmmPfns = [0, HmmPfn.ReqFault | HmmPfn.ReqWrite],
            };
            using (m.Mm.MmapReadLock())
                Hmm.RangeFault(range);
            pte = m.Mm.GetPte(a + Page);
        });

        Assert.True(pte.IsWritable && !pte.IsZeroPage, $"expected the requested page to be write-faulted, got {pte}");
    }

    [Fact]
    public void RangeFault_PerPageRequestThroughMask_LeavesUnrequestedPageAlone()
    {
        using var m = TestMachine.Create();
        Pte pte = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Process.ReadInt32(a);
            m.Process.ReadInt32(a + Page);
            var n = m.Watch(a, 2 * Page, new RecordingNotifierOps());
            var range = new HmmRange(n, a, a + (2 * Page))
            {
                NotifierSeq = n.ReadBegin(),
                PfnFlagsMask = HmmPfn.ReqFault | HmmPfn.ReqWrite,
                HmmPfns = [0, HmmPfn.ReqFault | HmmPfn.ReqWrite],
            };
            using (m.Mm.MmapReadLock())
                Hmm.RangeFault(range);
            pte = m.Mm.GetPte(a);
        });

        Assert.True(pte.IsZeroPage, $"expected the unrequested page to stay the zero page, got {pte}");
    }

    [Fact]
    public void RangeFault_SharedFilePageRead_ReturnsValidWithoutWrite()
    {
        using var m = TestMachine.Create();
        ulong entry = 0;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(Page));
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Shared, file);
            m.Process.ReadInt32(a);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + Page, 0);
            Assert.Equal(Errno.Ok, err);
            entry = pfns[0];
        });

        Assert.True((entry & (HmmPfn.Valid | HmmPfn.Write)) == HmmPfn.Valid, Describe(entry));
    }

    [Fact]
    public void RangeFault_WriteFaultOnReadOnlySharedFilePage_ReturnsOkWithWrite()
    {
        // Linux: a write fault on a shared mapping reuses the page (wp_page_shared) and sends no notifier, so unlike
        // a COW break it does not make hmm_range_fault return EBUSY.
        using var m = TestMachine.Create();
        var result = (Errno.EINVAL, 0UL);

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(Page));
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Shared, file);
            m.Process.ReadInt32(a);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            var (err, pfns) = Fault(n, a, a + Page, HmmPfn.ReqFault | HmmPfn.ReqWrite);
            result = (err, pfns[0] & (HmmPfn.Valid | HmmPfn.Write));
        });

        Assert.Equal((Errno.Ok, HmmPfn.Valid | HmmPfn.Write), result);
    }

    [Fact]
    public void RangeFault_FaultBeyondEndOfFile_ReturnsEFAULT()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(Page));
            ulong a = m.Process.Map(2 * Page, Prot.Read, MapFlags.Shared, file);
            var n = m.Watch(a, 2 * Page, new RecordingNotifierOps());
            err = Fault(n, a, a + (2 * Page), HmmPfn.ReqFault).Err;
        });

        Assert.Equal(Errno.EFAULT, err);
    }

    [Fact]
    public void RangeFault_WithoutMmapLock_ThrowsKernelRuleViolation()
    {
        using var m = TestMachine.Create();

        Assert.Throws<KernelRuleViolationException>(() => m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            Hmm.RangeFault(new HmmRange(n, a, a + Page) { NotifierSeq = n.ReadBegin() });
        }));
    }

    [Fact]
    public void RangeFault_StartNotBelowEnd_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            using (m.Mm.MmapReadLock())
                err = Hmm.RangeFault(new HmmRange(n, a + Page, a) { NotifierSeq = n.ReadBegin() });
        });

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void RangeFault_EmptyRange_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            using (m.Mm.MmapReadLock())
                err = Hmm.RangeFault(new HmmRange(n, a, a) { NotifierSeq = n.ReadBegin() });
        });

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void RangeFault_UnalignedRange_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        var err = Errno.Ok;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            var n = m.Watch(a, 2 * Page, new RecordingNotifierOps());
            using (m.Mm.MmapReadLock())
                err = Hmm.RangeFault(new HmmRange(n, a + 8, a + Page + 8) { NotifierSeq = n.ReadBegin() });
        });

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void RangeFault_RangeOutsideNotifierInterval_ThrowsArgumentException()
    {
        using var m = TestMachine.Create();

        Assert.Throws<ArgumentException>(() => m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            var n = m.Watch(a, Page, new RecordingNotifierOps());
            using (m.Mm.MmapReadLock())
                Hmm.RangeFault(new HmmRange(n, a, a + (2 * Page)) { NotifierSeq = n.ReadBegin() });
        }));
    }

    [Fact]
    public void RangeFault_NotifierNeverInserted_ThrowsInvalidOperation()
    {
        var n = new MmuIntervalNotifier(new RecordingNotifierOps());

        Assert.Throws<InvalidOperationException>(() => Hmm.RangeFault(new HmmRange(n, 0x1000, 0x2000)));
    }

    [Fact]
    public void RangeFault_Snapshot_DoesNotChangeCpuPageTable()
    {
        using var m = TestMachine.Create();
        Pte[] before = [], after = [];

        m.Run(() =>
        {
            ulong a = m.MapAnon(3);
            m.Process.ReadInt32(a);
            m.Process.WriteInt32(a + Page, 1);
            var n = m.Watch(a, 3 * Page, new RecordingNotifierOps());
            before = m.Ptes(a, 3);
            Assert.Equal(Errno.Ok, Fault(n, a, a + (3 * Page), 0).Err);
            after = m.Ptes(a, 3);
        });

        Assert.Equal(before, after);
    }
}
