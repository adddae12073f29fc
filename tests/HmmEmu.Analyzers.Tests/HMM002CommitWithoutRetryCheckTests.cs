using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM002CommitWithoutRetryCheckAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM002CommitWithoutRetryCheckTests
{
    // A fault-path fixture: a device table, a commit helper that takes the range, a predicate that only inspects it.
    private const string Helpers = """
        private readonly ulong[] _table = new ulong[512];
        private readonly object _sync = new object();

        private Errno Commit(HmmRange range)
        {
            for (int i = 0; i < range.PageCount; i++)
                _table[i] = range.HmmPfns[i];
            return Errno.Ok;
        }

        private static bool HasZeroPage(HmmRange range) => range.HmmPfns.Length == 0;

        [DeviceMapCommit]
        private void WritePte(ulong va, ulong pfn) => _table[(int)(va >> 12) & 511] = pfn;

        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

        """;

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Flag(int location, string what) =>
        Verify.Diagnostic().WithLocation(location)
            .WithMessage($"{what} commits a fault result without ReadRetry(seq) having answered false under the notifier update lock, still held, on every path to it: an invalidation since ReadBegin would leave a stale device mapping");

    [Fact]
    public async Task Fault_CommitsWithoutReadRetry_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range)
            {
                range.NotifierSeq = _notifier.ReadBegin();
                var err = Hmm.RangeFault(range);
                if (err != Errno.Ok)
                    return err;
                _lock.Lock();
                try
                {
                    return {|#0:Commit(range)|};
                }
                finally
                {
                    _lock.Unlock();
                }
            }
            """), Flag(0, "'TestDriver.Commit'"));
    }

    [Fact]
    public async Task Fault_CommitsAfterTheLockIsDropped_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range)
            {
                while (true)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    var err = Hmm.RangeFault(range);
                    if (err != Errno.Ok)
                        return err;
                    bool stale;
                    using (_lock.Scoped())
                        stale = _notifier.ReadRetry(range.NotifierSeq);
                    if (stale)
                        continue;
                    return {|#0:Commit(range)|};         // an invalidation can run between the unlock and here
                }
            }
            """), Flag(0, "'TestDriver.Commit'"));
    }

    [Fact]
    public async Task Fault_ReadRetryBeforeTakingTheLock_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range)
            {
                range.NotifierSeq = _notifier.ReadBegin();
                if (Hmm.RangeFault(range) != Errno.Ok)
                    return Errno.EFAULT;
                if (_notifier.ReadRetry(range.NotifierSeq))
                    return Errno.EBUSY;
                _lock.Lock();
                var err = {|#0:Commit(range)|};
                _lock.Unlock();
                return err;
            }
            """), Flag(0, "'TestDriver.Commit'"));
    }

    [Fact]
    public async Task Fault_StoresPfnsIntoATableWithoutReadRetry_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Snapshot(HmmRange range, byte[] perm)
            {
                range.NotifierSeq = _notifier.ReadBegin();
                if (Hmm.RangeFault(range) != Errno.Ok)
                    return Errno.EFAULT;
                using (_lock.Scoped())
                {
                    for (int i = 0; i < range.PageCount; i++)
                        {|#0:perm[i] = (byte)range.HmmPfns[i]|};
                }
                return Errno.Ok;
            }
            """), Flag(0, "This store"));
    }

    [Fact]
    public async Task DeviceMapCommit_OnlyOneBranchChecked_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public void Map(ulong va, ulong pfn, ulong seq, bool trusted)
            {
                _lock.Lock();
                try
                {
                    if (!trusted && _notifier.ReadRetry(seq))
                        return;
                    {|#0:WritePte(va, pfn)|};   // 'trusted' skips the check
                }
                finally
                {
                    _lock.Unlock();
                }
            }
            """), Flag(0, "'TestDriver.WritePte'"));
    }

    [Fact]
    public async Task DeviceMapCommit_RetryAnsweredTrue_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public void Map(ulong va, ulong pfn, ulong seq)
            {
                using (_lock.Scoped())
                {
                    if (_notifier.ReadRetry(seq))
                        {|#0:WritePte(va, pfn)|};    // inverted test
                }
            }
            """), Flag(0, "'TestDriver.WritePte'"));
    }

    [Fact]
    public async Task Fault_CanonicalRetryLoop_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range)
            {
                for (int attempt = 0; attempt < 10; attempt++)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    var err = Hmm.RangeFault(range);
                    if (err == Errno.EBUSY)
                        continue;
                    if (err != Errno.Ok)
                        return err;
                    if (HasZeroPage(range))     // a predicate inspects the result: not a commit
                        continue;
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
                return Errno.EBUSY;
            }
            """));
    }

    [Fact]
    public async Task Snapshot_StoreUnderScopedLockAfterRetry_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Snapshot(HmmRange range, byte[] perm)
            {
                while (true)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    if (Hmm.RangeFault(range) != Errno.Ok)
                        return Errno.EFAULT;
                    var copy = new ulong[range.PageCount];
                    for (int i = 0; i < copy.Length; i++)
                        copy[i] = range.HmmPfns[i];     // a local copy is not a device table
                    using (_lock.Scoped())
                    {
                        if (_notifier.ReadRetry(range.NotifierSeq))
                            continue;
                        for (int i = 0; i < range.PageCount; i++)
                            perm[i] = (byte)range.HmmPfns[i];
                        return Errno.Ok;
                    }
                }
            }
            """));
    }

    [Fact]
    public async Task DeviceMapCommit_NegatedRetryUnderLockStatement_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Map(ulong va, ulong pfn, ulong seq)
            {
                lock (_sync)
                {
                    if (!_notifier.ReadRetry(seq))
                    {
                        WritePte(va, pfn);
                        return true;
                    }
                }
                return false;
            }
            """));
    }

    [Fact]
    public async Task DeviceMapCommit_InsideAnotherCommitHelper_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            [DeviceMapCommit]
            private void WriteTwo(ulong va, ulong pfn)
            {
                WritePte(va, pfn);          // the contract is the caller's
                WritePte(va + 4096, pfn + 1);
            }
            """));
    }

    [Fact]
    public async Task Fault_HelperPreparesTheRangeBeforeTheFault_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            private void Prepare(HmmRange range, bool write) => range.DefaultFlags = write ? HmmPfn.ReqFault | HmmPfn.ReqWrite : HmmPfn.ReqFault;

            public Errno Fault(HmmRange range)
            {
                Prepare(range, write: true);             // before the fault: nothing to commit yet
                range.NotifierSeq = _notifier.ReadBegin();
                var err = Hmm.RangeFault(range);
                if (err != Errno.Ok)
                    return err;
                using (_lock.Scoped())
                {
                    if (_notifier.ReadRetry(range.NotifierSeq))
                        return Errno.EBUSY;
                    return Commit(range);
                }
            }
            """));
    }

    [Fact]
    public async Task Fault_RangeInitialisedBeforeTheFault_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public Errno Fault(HmmRange range, ulong[] request)
            {
                for (int i = 0; i < request.Length; i++)
                    range.HmmPfns[i] = request[i];       // request bits into the range, not a device table
                range.NotifierSeq = _notifier.ReadBegin();
                var err = Hmm.RangeFault(range);
                if (err != Errno.Ok)
                    return err;
                using (_lock.Scoped())
                    return _notifier.ReadRetry(range.NotifierSeq) ? Errno.EBUSY : Commit(range);
            }
            """));
    }
}
