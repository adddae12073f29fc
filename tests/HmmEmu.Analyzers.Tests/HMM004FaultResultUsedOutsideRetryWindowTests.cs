using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM004FaultResultUsedOutsideRetryWindowAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM004FaultResultUsedOutsideRetryWindowTests
{
    private const string Helpers = """
        private ulong Now => 0;

        private readonly ulong[] _table = new ulong[512];

        // A device-side predicate on the pfn number alone (GpuVram.Owns): it looks no page up.
        private static bool Owns(ulong pfn) => pfn >= 0x100000;

        // Caller holds _lock and has checked ReadRetry.
        private Errno Commit(HmmRange range)
        {
            for (int i = 0; i < range.PageCount; i++)
                _kernel.Memory.SetFlags(HmmPfn.ToPfn(range.HmmPfns[i]), PageFlags.Dirty);
            return Errno.Ok;
        }

        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

        """;

    private const string SeqMissing = "a new sequence from ReadBegin stored in NotifierSeq";
    private const string SeqWhy = "RangeFault checks the old sequence first and answers EBUSY again, until the deadline";
    private const string RequestsMissing = "rewriting the per-entry requests in HmmPfns";
    private const string RequestsWhy = "the earlier call replaced them with its output, so this one faults what that output asks for, not what the driver wanted";

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Page(int location, string callee) =>
        Verify.Diagnostic(HMM004FaultResultUsedOutsideRetryWindowAnalyzer.PageDescriptor).WithLocation(location)
            .WithMessage($"'{callee}' looks up a page from the fault result outside the window where ReadRetry(seq) has answered false under a lock still held: the page may have been freed and reused since RangeFault");

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Reuse(int location, string range, string missing, string why) =>
        Verify.Diagnostic(HMM004FaultResultUsedOutsideRetryWindowAnalyzer.ReuseDescriptor).WithLocation(location)
            .WithMessage($"RangeFault runs again on '{range}' after an earlier RangeFault without {missing} in between: {why}");

    [Fact]
    public async Task Fault_DmaMapsPagesBeforeReadRetry_Flags()
    {
        // Xe 0a98219bcc96: the sg table was built from hmm_pfn_to_page() before the notifier lock and seqno check.
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range, HmmEmu.Kernel.Bus.PciDev pci)
            {
                ulong deadline = Now + 1000;
                while (Now < deadline)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    var err = Hmm.RangeFault(range);
                    if (err == Errno.EBUSY)
                        continue;
                    if (err != Errno.Ok)
                        return err;
                    for (int i = 0; i < range.PageCount; i++)
                        {|#0:pci.DmaMapPage(HmmPfn.ToPfn(range.HmmPfns[i]), out _table[i])|};
                    using (_lock.Scoped())
                    {
                        if (_notifier.ReadRetry(range.NotifierSeq))
                            continue;
                        return Errno.Ok;
                    }
                }
                return Errno.EBUSY;
            }
            """), Page(0, "PciDev.DmaMapPage"));
    }

    [Fact]
    public async Task Fault_MarksPagesDirtyAfterTheLockIsDropped_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range)
            {
                range.NotifierSeq = _notifier.ReadBegin();
                var err = Hmm.RangeFault(range);
                if (err != Errno.Ok)
                    return err;
                var pfns = range.HmmPfns;
                _lock.Lock();
                try
                {
                    if (_notifier.ReadRetry(range.NotifierSeq))
                        return Errno.EBUSY;
                    _kernel.Memory.SetFlags(HmmPfn.ToPfn(pfns[0]), PageFlags.Dirty);
                }
                finally
                {
                    _lock.Unlock();
                }
                ulong pfn = HmmPfn.ToPfn(pfns[0]);
                {|#0:_kernel.Memory.SetFlags(pfn, PageFlags.Dirty)|};    // the invalidation may have freed it by now
                return Errno.Ok;
            }
            """), Page(0, "PhysicalMemory.SetFlags"));
    }

    [Fact]
    public async Task Fault_ForeachOverPfnsReadsPageBytesBeforeRetry_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Checksum(HmmRange range, out ulong sum)
            {
                sum = 0;
                range.NotifierSeq = _notifier.ReadBegin();
                var err = Hmm.RangeFault(range);
                if (err != Errno.Ok)
                    return err;
                foreach (ulong e in range.HmmPfns)
                {
                    if ((e & HmmPfn.Valid) != 0)
                        sum += {|#0:_kernel.Memory.PageBytes(HmmPfn.ToPfn(e))|}[0];
                }
                using (_lock.Scoped())
                    return _notifier.ReadRetry(range.NotifierSeq) ? Errno.EBUSY : Errno.Ok;
            }
            """), Page(0, "PhysicalMemory.PageBytes"));
    }

    [Fact]
    public async Task Fault_DevicePagemapLookupWithoutAnyRetryCheck_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public object? FirstPageOwner(HmmRange range)
            {
                range.NotifierSeq = _notifier.ReadBegin();
                if (Hmm.RangeFault(range) != Errno.Ok)
                    return null;
                return {|#0:HmmEmu.Kernel.Migration.DevicePagemap.Of(_kernel, HmmPfn.ToPfn(range.HmmPfns[0]))|}?.Owner;
            }
            """), Page(0, "DevicePagemap.Of"));
    }

    [Fact]
    public async Task Loop_ReadBeginOutsideTheLoop_FlagsTheRepeatedFault()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range)
            {
                ulong deadline = Now + 1000;
                range.NotifierSeq = _notifier.ReadBegin();
                while (Now < deadline)
                {
                    Errno err;
                    using (_kernel.CurrentProcess!.Mm.MmapReadLock())
                        err = {|#0:Hmm.RangeFault(range)|};
                    if (err == Errno.EBUSY)
                        continue;
                    if (err != Errno.Ok)
                        return err;
                    using (_lock.Scoped())
                    {
                        if (_notifier.ReadRetry(range.NotifierSeq))
                            continue;
                        return Commit(range);
                    }
                }
                return Errno.EBUSY;
            }
            """), Reuse(0, "range", SeqMissing, SeqWhy));
    }

    [Fact]
    public async Task Loop_PerEntryRequestsFilledOnceBeforeTheLoop_FlagsTheRepeatedFault()
    {
        // nouveau 0cafc62e4daf: "the input hmm_pfns array is not reinitialized after hmm_range_fault() returns -EBUSY".
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range, bool[] write)
            {
                range.PfnFlagsMask = HmmPfn.ReqFault | HmmPfn.ReqWrite;
                for (int i = 0; i < range.PageCount; i++)
                    range.HmmPfns[i] = HmmPfn.ReqFault | (write[i] ? HmmPfn.ReqWrite : 0);
                ulong deadline = Now + 1000;
                while (Now < deadline)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    var err = {|#0:Hmm.RangeFault(range)|};
                    if (err == Errno.EBUSY)
                        continue;
                    if (err != Errno.Ok)
                        return err;
                    using (_lock.Scoped())
                    {
                        if (_notifier.ReadRetry(range.NotifierSeq))
                            continue;
                        return Commit(range);
                    }
                }
                return Errno.EBUSY;
            }
            """), Reuse(0, "range", RequestsMissing, RequestsWhy));
    }

    [Fact]
    public async Task Fault_PageLookupUnderTheLockAfterReadRetry_DoesNotFlag()
    {
        // IbvMr.Commit inline: DMA-map each page under the MR's lock, after ReadRetry answered false.
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range, HmmEmu.Kernel.Bus.PciDev pci)
            {
                ulong deadline = Now + 1000;
                while (Now < deadline)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    var err = Hmm.RangeFault(range);
                    if (err == Errno.EBUSY)
                        continue;
                    if (err != Errno.Ok)
                        return err;
                    _lock.Lock();
                    try
                    {
                        if (_notifier.ReadRetry(range.NotifierSeq))
                            continue;
                        var pfns = range.HmmPfns;
                        for (int i = 0; i < range.PageCount; i++)
                        {
                            err = pci.DmaMapPage(HmmPfn.ToPfn(pfns[i]), out ulong bus);
                            if (err != Errno.Ok)
                                return err;
                            _table[i] = bus;
                        }
                        return Errno.Ok;
                    }
                    finally
                    {
                        _lock.Unlock();
                    }
                }
                return Errno.EBUSY;
            }
            """));
    }

    [Fact]
    public async Task Fault_FlagTestsAndPfnPredicatesBeforeRetry_DoesNotFlag()
    {
        // GpuContext.ResolveRange / HasReadOnlyVramPage: inspecting entries to decide to retry looks no page up.
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range)
            {
                ulong deadline = Now + 1000;
                while (Now < deadline)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    var err = Hmm.RangeFault(range);
                    if (err == Errno.EBUSY)
                        continue;
                    if (err != Errno.Ok)
                        return err;
                    bool readOnlyVram = false;
                    foreach (ulong e in range.HmmPfns)
                        readOnlyVram |= (e & (HmmPfn.Valid | HmmPfn.Write)) == HmmPfn.Valid && Owns(HmmPfn.ToPfn(e));
                    if (readOnlyVram || !_kernel.Memory.IsValidPfn(HmmPfn.ToPfn(range.HmmPfns[0])))
                        continue;
                    using (_lock.Scoped())
                    {
                        if (_notifier.ReadRetry(range.NotifierSeq))
                            continue;
                        return Commit(range);
                    }
                }
                return Errno.EBUSY;
            }
            """));
    }

    [Fact]
    public async Task Snapshot_SingleFaultReadOnlyByPredicates_DoesNotFlag()
    {
        // GpuContext.HasPagesOutsideVram: one snapshot, no retry loop, a heuristic over pfn numbers.
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool HasPagesOutsideVram(ulong start, ulong end)
            {
                var range = new HmmRange(_notifier, start, end) { DevPrivateOwner = _owner, DefaultFlags = 0 };
                range.NotifierSeq = _notifier.ReadBegin();
                if (Hmm.RangeFault(range) != Errno.Ok)
                    return true;
                foreach (ulong e in range.HmmPfns)
                {
                    if ((e & HmmPfn.Valid) == 0 || !Owns(HmmPfn.ToPfn(e)))
                        return true;
                }
                return false;
            }
            """));
    }

    [Fact]
    public async Task Loop_DefaultFlagsAndReadBeginEachRound_DoesNotFlag()
    {
        // The shape every driver uses (MirrorFile.RangeFaultAndCommit): new sequence each round, requests in DefaultFlags.
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(ulong start, ulong end, bool write)
            {
                var range = new HmmRange(_notifier, start, end) { DevPrivateOwner = _owner };
                ulong deadline = Now + 1000;
                while (true)
                {
                    if (Now > deadline)
                        return Errno.EBUSY;
                    range.DefaultFlags = HmmPfn.ReqFault | (write ? HmmPfn.ReqWrite : 0);
                    range.NotifierSeq = _notifier.ReadBegin();
                    Errno err;
                    using (_kernel.CurrentProcess!.Mm.MmapReadLock())
                        err = Hmm.RangeFault(range);
                    if (err == Errno.EBUSY)
                        continue;
                    if (err != Errno.Ok)
                        return err;
                    _lock.Lock();
                    try
                    {
                        if (_notifier.ReadRetry(range.NotifierSeq))
                            continue;
                        return Commit(range);
                    }
                    finally
                    {
                        _lock.Unlock();
                    }
                }
            }
            """));
    }

    [Fact]
    public async Task Loop_PerEntryRequestsRewrittenEachRound_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range, bool[] write)
            {
                range.PfnFlagsMask = HmmPfn.ReqFault | HmmPfn.ReqWrite;
                ulong deadline = Now + 1000;
                while (Now < deadline)
                {
                    for (int i = 0; i < range.PageCount; i++)
                        range.HmmPfns[i] = HmmPfn.ReqFault | (write[i] ? HmmPfn.ReqWrite : 0);
                    range.NotifierSeq = _notifier.ReadBegin();
                    var err = Hmm.RangeFault(range);
                    if (err == Errno.EBUSY)
                        continue;
                    if (err != Errno.Ok)
                        return err;
                    using (_lock.Scoped())
                    {
                        if (_notifier.ReadRetry(range.NotifierSeq))
                            continue;
                        return Commit(range);
                    }
                }
                return Errno.EBUSY;
            }
            """));
    }

    [Fact]
    public async Task Loop_NewRangeEachRound_DoesNotFlag()
    {
        // A fresh range per round: its sequence comes from the initializer and its requests array is new.
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(ulong start, ulong end)
            {
                ulong deadline = Now + 1000;
                while (Now < deadline)
                {
                    var range = new HmmRange(_notifier, start, end) { PfnFlagsMask = HmmPfn.ReqWrite, DefaultFlags = HmmPfn.ReqFault, NotifierSeq = _notifier.ReadBegin() };
                    var err = Hmm.RangeFault(range);
                    if (err == Errno.EBUSY)
                        continue;
                    if (err != Errno.Ok)
                        return err;
                    using (_lock.Scoped())
                    {
                        if (_notifier.ReadRetry(range.NotifierSeq))
                            continue;
                        return Commit(range);
                    }
                }
                return Errno.EBUSY;
            }
            """));
    }
}
