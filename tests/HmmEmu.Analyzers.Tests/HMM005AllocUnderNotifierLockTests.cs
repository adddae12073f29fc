using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM005AllocUnderNotifierLockAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM005AllocUnderNotifierLockTests
{
    // An invalidate callback that takes _lock, so that _lock is "a lock an invalidate callback takes".
    private const string Callback = """
        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
        {
            if (!range.Blockable)
                return false;
            using (_lock.Scoped())
                notifier.SetSeq(curSeq);
            return true;
        }

        """;

    private const string What = "may enter reclaim, which invalidates";

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Flag(int location, string callee, string callback = "TestDriver.Invalidate") =>
        Verify.Diagnostic(HMM005AllocUnderNotifierLockAnalyzer.CompilationEndDescriptor).WithLocation(location)
            .WithArguments(callee, What, "_lock", callback);

    [Fact]
    public async Task AllocPageKernel_UnderCallbackLock_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback + """
            public Errno Grow()
            {
                using (_lock.Scoped())
                    return {|#0:_kernel.Memory.AllocPage(Gfp.Kernel | Gfp.Zero, out ulong pfn)|};
            }
            """), Flag(0, "PhysicalMemory.AllocPage"));
    }

    [Fact]
    public async Task AllocCoherentDefaultFlags_UnderNotifierUpdateLock_FlagsAtOnce()
    {
        await Verify.AnalyzerAsync("""
            using HmmEmu.Annotations;
            using HmmEmu.Kernel;
            using HmmEmu.Kernel.Bus;
            using HmmEmu.Kernel.Locking;

            public sealed class Tables
            {
                [NotifierUpdateLock]
                private readonly KMutex _ptLock;
                private readonly PciDev _dev;

                public Tables(KMutex ptLock, PciDev dev) { _ptLock = ptLock; _dev = dev; }

                public Errno AddTable()
                {
                    _ptLock.Lock();
                    try
                    {
                        return {|#0:_dev.AllocCoherent(4096, out var table)|};
                    }
                    finally
                    {
                        _ptLock.Unlock();
                    }
                }
            }
            """, Verify.Diagnostic(HMM005AllocUnderNotifierLockAnalyzer.Descriptor).WithLocation(0)
                .WithArguments("PciDev.AllocCoherent", What, "_ptLock", "(it is the [NotifierUpdateLock])"));
    }

    [Fact]
    public async Task ReclaimingAllocationInsideTheCallbackUnderItsLock_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                _lock.Lock();
                notifier.SetSeq(curSeq);
                {|#0:_kernel.MightAlloc(Gfp.Kernel)|};
                _lock.Unlock();
                return true;
            }
            """), Flag(0, "HostKernel.MightAlloc"));
    }

    [Fact]
    public async Task AtomicAllocation_UnderCallbackLock_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback + """
            public Errno Grow()
            {
                using (_lock.Scoped())
                    return _kernel.Memory.AllocPage(Gfp.Atomic, out ulong pfn);
            }
            """));
    }

    [Fact]
    public async Task AllocateBeforeLockThenRevalidate_DoesNotFlag()
    {
        // The drm_gpusvm shape: drop the lock, allocate, take it again and re-check.
        await Verify.AnalyzerAsync(Driver.Wrap(Callback + """
            public Errno Grow(bool needTable)
            {
                _lock.Lock();
                bool missing = needTable;
                _lock.Unlock();
                if (!missing)
                    return Errno.Ok;
                var err = _kernel.Memory.AllocPage(Gfp.Kernel, out ulong pfn);
                if (err != Errno.Ok)
                    return err;
                _lock.Lock();
                try
                {
                    Zap(0, 4096);
                }
                finally
                {
                    _lock.Unlock();
                }
                return Errno.Ok;
            }
            """));
    }

    [Fact]
    public async Task AllocationUnderALockNoCallbackTakes_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback + """
            public Errno Grow()
            {
                using (_other.Scoped())
                    return _kernel.Memory.AllocPage(Gfp.Kernel, out ulong pfn);
            }
            """));
    }
}
