using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM006FaultOrWaitUnderNotifierLockAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM006FaultOrWaitUnderNotifierLockTests
{
    // An invalidate callback that takes _lock, so that _lock is "a lock an invalidate callback takes".
    private const string Callback = """
        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
        {
            if (!range.Blockable)
                return false;
            using (_lock.Scoped())
            {
                notifier.SetSeq(curSeq);
                Zap(range.Start, range.End);
                _done.Wait();                  // the callback's own TLB wait under its lock: not this rule's business
            }
            return true;
        }

        """;

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Flag(int location, string callee, string what, string lockName = "_lock") =>
        Verify.Diagnostic(HMM006FaultOrWaitUnderNotifierLockAnalyzer.CompilationEndDescriptor).WithLocation(location)
            .WithArguments(callee, what, lockName, "TestDriver.Invalidate");

    private const string Invalidates = "may run or wait for invalidate callbacks";

    [Fact]
    public async Task RangeFault_UnderCallbackLock_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback + """
            public Errno Fault(HmmRange range)
            {
                _lock.Lock();
                try
                {
                    return {|#0:Hmm.RangeFault(range)|};
                }
                finally
                {
                    _lock.Unlock();
                }
            }
            """), Flag(0, "Hmm.RangeFault", Invalidates));
    }

    [Fact]
    public async Task ReadBeginAndRemove_UnderCallbackLockScope_Flag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback + """
            public ulong Begin()
            {
                using (_lock.Scoped())
                    return {|#0:_notifier.ReadBegin()|};
            }

            public void Close()
            {
                using var held = _lock.Scoped();
                {|#1:_notifier.Remove()|};
            }
            """), Flag(0, "MmuIntervalNotifier.ReadBegin", Invalidates), Flag(1, "MmuIntervalNotifier.Remove", Invalidates));
    }

    [Fact]
    public async Task BlockingWait_UnderCallbackLockOutsideCallback_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback + """
            public void Flush()
            {
                if (!_lock.TryLock())
                    return;
                {|#0:_done.Wait()|};
                {|#1:_kernel.SystemWorkQueue.Flush()|};
                _lock.Unlock();
            }
            """),
            Flag(0, "Completion.Wait", "waits for another thread or the device"),
            Flag(1, "WorkQueue.Flush", "waits for another thread or the device"));
    }

    [Fact]
    public async Task RangeFault_UnderNotifierUpdateLock_FlagsWithoutACallbackInSight()
    {
        await Verify.AnalyzerAsync("""
            using HmmEmu.Annotations;
            using HmmEmu.Kernel;
            using HmmEmu.Kernel.Locking;
            using HmmEmu.Kernel.Mirroring;

            public sealed class FaultPath
            {
                [NotifierUpdateLock]
                private readonly KMutex _ptLock;

                public FaultPath(KMutex ptLock) => _ptLock = ptLock;

                public Errno Fault(HmmRange range)
                {
                    using (_ptLock.Scoped())
                        return {|#0:Hmm.RangeFault(range)|};
                }
            }
            """, Verify.Diagnostic(HMM006FaultOrWaitUnderNotifierLockAnalyzer.Descriptor).WithLocation(0)
                .WithArguments("Hmm.RangeFault", Invalidates, "_ptLock", "(it is the [NotifierUpdateLock])"));
    }

    [Fact]
    public async Task FaultPath_LockDroppedBeforeFaultAndRetakenForCommit_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback + """
            public Errno Fault(HmmRange range, Mm mm)
            {
                while (true)
                {
                    range.NotifierSeq = _notifier.ReadBegin();
                    Errno err;
                    using (mm.MmapReadLock())
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
                        Zap(range.Start, range.End);
                        return Errno.Ok;
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
    public async Task Wait_LockDroppedAndRetakenAroundIt_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback + """
            public void Drain()
            {
                _lock.Lock();
                Zap(0, 4096);
                _lock.Unlock();
                _done.Wait();
                _lock.Lock();
                Zap(0, 4096);
                _lock.Unlock();
            }
            """));
    }

    [Fact]
    public async Task Wait_UnderALockNoCallbackTakes_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback + """
            public void Submit()
            {
                using (_other.Scoped())
                {
                    _done.Wait();
                    _events.WaitEvent(this, static d => true);
                }
                _other.Lock();
                try
                {
                    Zap(0, 4096);
                }
                finally
                {
                    _other.Unlock();
                }
                _notifier.ReadBegin();
            }
            """));
    }

    [Fact]
    public async Task Munmap_UnderALockTheCallbackTakesWithALockStatement_Flags()
    {
        await Verify.AnalyzerAsync("""
            using HmmEmu.Kernel;
            using HmmEmu.Kernel.Notifiers;
            using HmmEmu.Kernel.Vm;

            public sealed class Mirror : IMmuIntervalNotifierOps
            {
                private readonly object _table = new object();

                public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
                {
                    if (!range.Blockable)
                        return false;
                    lock (_table)
                        notifier.SetSeq(curSeq);
                    return true;
                }

                public Errno Shrink(Mm mm, ulong addr, ulong length)
                {
                    lock (_table)
                        return {|#0:mm.Munmap(addr, length)|};
                }
            }
            """, Verify.Diagnostic(HMM006FaultOrWaitUnderNotifierLockAnalyzer.CompilationEndDescriptor).WithLocation(0)
                .WithArguments("Mm.Munmap", Invalidates, "_table", "Mirror.Invalidate"));
    }
}
