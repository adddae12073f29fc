using Microsoft.CodeAnalysis.Testing;
using Rule = HmmEmu.Analyzers.HMM009NotifierLifetimeAnalyzer;
using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM009NotifierLifetimeAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM009NotifierLifetimeTests
{
    private const string MmField = """
        private Mm _mm = null!;

        """;

    private const string NoopInvalidate = """
        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

        """;

    private static DiagnosticResult Remove(int location, string through = "") =>
        Verify.Diagnostic(Rule.RemoveInCallbackDescriptor).WithLocation(location).WithArguments("TestDriver.Invalidate", through);

    private static DiagnosticResult MmPut(int location, string through = "") =>
        Verify.Diagnostic(Rule.MmPutInCallbackDescriptor).WithLocation(location).WithArguments("TestDriver.Invalidate", through);

    private static DiagnosticResult NoRef(int location, string method, string callee, string hint) =>
        Verify.Diagnostic(Rule.NoMmReferenceDescriptor).WithLocation(location).WithArguments("TestDriver." + method, callee, hint);

    private const string Outside = " (callable from outside this assembly, so it cannot rely on its callers)";

    // ---- (a) and (c): Remove / MmPut from the invalidate callback ----------------------------------------------------

    [Fact]
    public async Task Remove_InInvalidateCallback_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (range.Event == NotifierEvent.Release)
                {
                    {|#0:notifier.Remove()|};
                    return true;
                }
                notifier.SetSeq(curSeq);
                return true;
            }
            """), Remove(0));
    }

    [Fact]
    public async Task Remove_ThroughPrivateHelpers_FlagsTheCallInTheCallback()
    {
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                notifier.SetSeq(curSeq);
                if (range.Event == NotifierEvent.Release)
                    {|#0:Teardown()|};
                return true;
            }

            private void Teardown() => Unregister();

            private void Unregister() => _notifier.Remove();
            """), Remove(0, " (through Teardown → Unregister)"));
    }

    [Fact]
    public async Task MmPut_InCallbackAndThroughHelper_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(MmField + """
            [InvalidateCallback]
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                notifier.SetSeq(curSeq);
                if (range.Event == NotifierEvent.Release)
                {
                    {|#0:_mm.MmPut()|};
                    {|#1:DropMm()|};
                }
                return true;
            }

            private void DropMm() => _mm.MmPut();
            """), MmPut(0), MmPut(1, " (through DropMm)"));
    }

    [Fact]
    public async Task Remove_DeferredToALambda_OrOutsideTheCallback_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(MmField + """
            private Action? _deferred;

            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                notifier.SetSeq(curSeq);
                if (range.Event == NotifierEvent.Release)
                    _deferred = () => { notifier.Remove(); _mm.MmPut(); };   // runs later, on a work queue
                return true;
            }

            public void Close()
            {
                _notifier.Remove();
                _mm.MmPut();
            }
            """));
    }

    [Fact]
    public async Task Remove_InAnotherTypesMethodOfTheSameName_DoesNotFlag()
    {
        // A helper of another type called from the callback is not followed; a same-named method there is not ours.
        await Verify.AnalyzerAsync(Driver.Wrap("""
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                notifier.SetSeq(curSeq);
                Stats.Count();
                return true;
            }

            private static class Stats
            {
                public static void Count() { }
            }
            """));
    }

    // ---- (b): a fault on a stored mm without a reference ---------------------------------------------------------------

    [Fact]
    public async Task Fault_OnStoredMm_WithoutReference_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(MmField + NoopInvalidate + """
            public Errno HandleFault(ulong start, ulong end)
            {
                var range = new HmmRange(_notifier, start, end);
                range.NotifierSeq = {|#0:_notifier.ReadBegin()|};
                using (_mm.MmapReadLock())
                    return {|#1:Hmm.RangeFault(range)|};
            }
            """),
            NoRef(0, "HandleFault", "MmuIntervalNotifier.ReadBegin", Outside),
            NoRef(1, "HandleFault", "Hmm.RangeFault", Outside));
    }

    [Fact]
    public async Task Fault_AfterTheReferenceWasPut_OrOnlyOnSomePaths_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(MmField + NoopInvalidate + """
            public Errno PutTooEarly(ulong start, ulong end)
            {
                if (!_mm.MmGetNotZero())
                    return Errno.EFAULT;
                _mm.MmPut();
                var range = new HmmRange(_notifier, start, end);
                using (_mm.MmapReadLock())
                    return {|#0:Hmm.RangeFault(range)|};
            }

            public Errno SomePaths(ulong start, ulong end, bool fromProcess)
            {
                bool got = fromProcess || _mm.MmGetNotZero();
                if (!got)
                    return Errno.EFAULT;
                var range = new HmmRange(_notifier, start, end);
                using (_mm.MmapReadLock())
                    return {|#1:Hmm.RangeFault(range)|};
            }
            """),
            NoRef(0, "PutTooEarly", "Hmm.RangeFault", Outside),
            NoRef(1, "SomePaths", "Hmm.RangeFault", Outside));
    }

    [Fact]
    public async Task PrivateHelper_CalledByAMethodWithoutReference_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(MmField + NoopInvalidate + """
            public Errno Prefetch(ulong start, ulong end) => Resolve(start, end);

            private Errno Resolve(ulong start, ulong end)
            {
                var range = new HmmRange(_notifier, start, end) { NotifierSeq = {|#0:_notifier.ReadBegin()|} };
                using (_mm.MmapReadLock())
                    return {|#1:Hmm.RangeFault(range)|};
            }
            """),
            NoRef(0, "Resolve", "MmuIntervalNotifier.ReadBegin", " (a caller does not hold one either)"),
            NoRef(1, "Resolve", "Hmm.RangeFault", " (a caller does not hold one either)"));
    }

    [Fact]
    public async Task Fault_UnderMmGetNotZero_WithPutInFinally_DoesNotFlag()
    {
        // The drivers' shape (GpuContext.ResolveFault, MirrorFile.Fault, IbvMr.Fault).
        await Verify.AnalyzerAsync(Driver.Wrap(MmField + NoopInvalidate + """
            public Errno HandleFault(ulong start, ulong end)
            {
                if (!_mm.MmGetNotZero())
                    return Errno.EFAULT;
                try
                {
                    var range = new HmmRange(_notifier, start, end);
                    range.NotifierSeq = _notifier.ReadBegin();
                    using (_mm.MmapReadLock())
                        return Hmm.RangeFault(range);
                }
                finally
                {
                    _mm.MmPut();
                }
            }

            public Errno ViaLocal(ulong start, ulong end)
            {
                bool ok = _mm.MmGetNotZero();
                if (ok == false)
                    return Errno.EFAULT;
                var range = new HmmRange(_notifier, start, end) { NotifierSeq = _notifier.ReadBegin() };
                Errno err;
                using (_mm.MmapReadLock())
                    err = Hmm.RangeFault(range);
                _mm.MmPut();
                return err;
            }
            """));
    }

    [Fact]
    public async Task Helpers_EveryCallerHoldsAReference_DoNotFlag()
    {
        // MirrorFile.Fault → RangeFaultAndCommit, GpuContext.ResolveFault → ResolveRange → (internal) helpers, and
        // GpuMigrator.ToVramLocked calling GpuContext.HasPagesOutsideVram on another type while holding the reference.
        await Verify.AnalyzerAsync(Driver.Wrap(MmField + NoopInvalidate + """
            public Errno HandleFault(ulong start, ulong end)
            {
                if (!_mm.MmGetNotZero())
                    return Errno.EFAULT;
                try
                {
                    return ResolveRange(start, end);
                }
                finally
                {
                    _mm.MmPut();
                }
            }

            private Errno ResolveRange(ulong start, ulong end) => Snapshot(start, end) ? Errno.Ok : Errno.EBUSY;

            private bool Snapshot(ulong start, ulong end)
            {
                var range = new HmmRange(_notifier, start, end) { NotifierSeq = _notifier.ReadBegin() };
                using (_mm.MmapReadLock())
                    return Hmm.RangeFault(range) == Errno.Ok;
            }
            """) + """

            internal sealed class Migrator
            {
                public bool Migrate(Mm mm, Context ctx)
                {
                    if (!mm.MmGetNotZero())
                        return false;
                    try
                    {
                        return ctx.HasPagesOutsideVram(0, 4096);
                    }
                    finally
                    {
                        mm.MmPut();
                    }
                }
            }

            internal sealed class Context
            {
                private readonly Mm _mm = null!;
                private readonly MmuIntervalNotifier _notifier = null!;

                internal bool HasPagesOutsideVram(ulong start, ulong end)
                {
                    var range = new HmmRange(_notifier, start, end) { NotifierSeq = _notifier.ReadBegin() };
                    using (_mm.MmapReadLock())
                        return Hmm.RangeFault(range) != Errno.Ok;
                }
            }
            """);
    }

    [Fact]
    public async Task Fault_RangeFromTheCaller_OrMmFromAParameter_DoesNotFlag()
    {
        // A step of its caller's fault (nouveau_range_fault is called with the reference held); and a helper given the
        // mm and notifier by its caller, which is responsible for them.
        await Verify.AnalyzerAsync(Driver.Wrap(MmField + NoopInvalidate + """
            public Errno RangeFaultAndCommit(HmmRange range)
            {
                range.NotifierSeq = _notifier.ReadBegin();
                using (_mm.MmapReadLock())
                    return Hmm.RangeFault(range);
            }

            public static Errno Snapshot(Mm mm, MmuIntervalNotifier notifier, ulong start, ulong end)
            {
                var range = new HmmRange(notifier, start, end) { NotifierSeq = notifier.ReadBegin() };
                using (mm.MmapReadLock())
                    return Hmm.RangeFault(range);
            }
            """));
    }
}
