using Microsoft.CodeAnalysis.Testing;
using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.RDMA002DeferredWorkWithoutRefAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class RDMA002DeferredWorkWithoutRefTests
{
    // A reference-counted MR (kref-like Get/TryGet/Put) and a driver with a work queue that prefetches MRs.
    private static string Driver(string members) => """
        using System;
        using System.Threading;
        using System.Threading.Tasks;
        using HmmEmu.Annotations;
        using HmmEmu.Kernel;
        using HmmEmu.Kernel.Locking;
        using HmmEmu.Kernel.Vm;

        public sealed class Mr
        {
            private int _refs = 1;

            public uint Lkey => 1;

            [RefGet]
            public void Get() => Interlocked.Increment(ref _refs);

            [RefGet]
            public bool TryGet()
            {
                int r = Volatile.Read(ref _refs);
                return r > 0 && Interlocked.CompareExchange(ref _refs, r + 1, r) == r;
            }

            [RefPut]
            public void Put() => Interlocked.Decrement(ref _refs);

            public int Prefetch(ulong address, ulong length) => 0;
        }

        public sealed class OdpDriver
        {
            private readonly WorkQueue _wq;
            private readonly WorkItem _faultWork;

            public OdpDriver(WorkQueue wq)
            {
                _wq = wq;
                _faultWork = new WorkItem("odp fault", HandleFaults);
            }

            private Mr? Lookup(uint key) => null;

            private void HandleFaults() { }

            private static void Restore(Mm mm) { }

        """ + members + """

        }
        """;

    private static DiagnosticResult NoReference(int location, string name, string type) =>
        Verify.Diagnostic(RDMA002DeferredWorkWithoutRefAnalyzer.NoReferenceDescriptor).WithLocation(location)
            .WithMessage($"The deferred work captures '{name}' ({type} is reference-counted) on a path where no reference was taken on it before queueing: take one ([RefGet]) before queueing and drop it ([RefPut]) when the work ends");

    private static DiagnosticResult NoPut(int location, string name) =>
        Verify.Diagnostic(RDMA002DeferredWorkWithoutRefAnalyzer.NoPutDescriptor).WithLocation(location)
            .WithMessage($"The deferred work uses '{name}' under a reference it never drops: hand the reference to the work and drop it there ([RefPut], in a finally), not in the caller");

    // ---- must flag ---------------------------------------------------------------------------------------------------

    [Fact]
    public async Task Prefetch_WorkItemCapturesTheMrWithoutAReference_Flags()
    {
        // mlx5 before "Use SRCU properly in ODP prefetch": the work used an MR nothing kept alive.
        await Verify.AnalyzerAsync(Driver("""
                public void AdvisePrefetch(Mr mr, ulong address, ulong length)
                {
                    _wq.Queue(new WorkItem("prefetch", {|#0:() => mr.Prefetch(address, length)|}));
                }
            """), NoReference(0, "mr", "Mr"));
    }

    [Fact]
    public async Task Prefetch_ReferenceTakenOnOneBranchOnly_Flags()
    {
        await Verify.AnalyzerAsync(Driver("""
                public Task AdvisePrefetch(Mr mr, bool flush)
                {
                    if (flush)
                        mr.Get();
                    return Task.Run({|#0:() =>
                    {
                        try { mr.Prefetch(0, 4096); }
                        finally { mr.Put(); }
                    }|});
                }
            """), NoReference(0, "mr", "Mr"));
    }

    [Fact]
    public async Task Prefetch_CallerDropsItsReferenceAfterQueueing_FlagsTheWork()
    {
        // rxe before d94671632572: the reference covered the scheduling, not the run.
        await Verify.AnalyzerAsync(Driver("""
                public void AdvisePrefetch(Mr mr)
                {
                    mr.Get();
                    _wq.Queue(new WorkItem("prefetch", {|#0:() => mr.Prefetch(0, 4096)|}));
                    mr.Put();
                }
            """), NoPut(0, "mr"));
    }

    [Fact]
    public async Task Restore_WorkCapturesTheMmWithoutMmGetNotZero_Flags()
    {
        // amdkfd a29e067bd389: take the mm reference when queueing the deferred work.
        await Verify.AnalyzerAsync(Driver("""
                public void ScheduleRestore(Mm mm)
                {
                    _wq.Queue(new WorkItem("restore", {|#0:() => Restore(mm)|}));
                }
            """), NoReference(0, "mm", "Mm"));
    }

    [Fact]
    public async Task Prefetch_MrPassedAsThreadPoolStateWithoutAReference_Flags()
    {
        await Verify.AnalyzerAsync(Driver("""
                private static void Run(object? state) => ((Mr)state!).Prefetch(0, 4096);

                public void AdvisePrefetch(Mr mr)
                {
                    ThreadPool.QueueUserWorkItem(Run, {|#0:mr|});
                }
            """), NoReference(0, "mr", "Mr"));
    }

    [Fact]
    public async Task Kick_ReferenceCountedObjectQueuesWorkOnItselfWithoutAReference_FlagsTheThisCapture()
    {
        // The second method takes its own reference first and drops it in the work: not flagged.
        await Verify.AnalyzerAsync(Driver("""
                public sealed class SelfQueueingMr
                {
                    [RefGet]
                    public void Get() { }

                    [RefPut]
                    public void Put() { }

                    private void Work() { }

                    public Task Kick() => Task.Run({|#0:() => Work()|});

                    public Task KickHeld()
                    {
                        Get();
                        return Task.Run(() =>
                        {
                            try { Work(); }
                            finally { Put(); }
                        });
                    }
                }
            """), NoReference(0, "this", "SelfQueueingMr"));
    }

    // ---- must not flag -----------------------------------------------------------------------------------------------

    [Fact]
    public async Task Prefetch_ReferenceTakenBeforeAndDroppedInTheWork_DoesNotFlag()
    {
        // mlx5/rxe after the fixes: the work holds the MR reference for its whole run.
        await Verify.AnalyzerAsync(Driver("""
                public void AdvisePrefetch(Mr mr, ulong address, ulong length)
                {
                    mr.Get();
                    _wq.Queue(new WorkItem("prefetch", () =>
                    {
                        try { mr.Prefetch(address, length); }
                        finally { mr.Put(); }
                    }));
                }
            """));
    }

    [Fact]
    public async Task Prefetch_GetUnlessZeroGuardsTheQueueing_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver("""
                public int AdvisePrefetch(Mr mr)
                {
                    if (!mr.TryGet())
                        return -14;
                    Task.Run(() =>
                    {
                        try { mr.Prefetch(0, 4096); }
                        finally { mr.Put(); }
                    });
                    return 0;
                }
            """));
    }

    [Fact]
    public async Task FaultWork_OurRnicShape_MethodGroupOnTheDeviceAndLookupInTheWork_DoesNotFlag()
    {
        // RnicDevice: a long-lived work item over the (not reference-counted) device; the work looks the MR up by key.
        await Verify.AnalyzerAsync(Driver("""
                public void OnPageFaultEvent(uint key)
                {
                    _wq.Queue(_faultWork);
                    _wq.Queue(new WorkItem("odp fault one", () => Lookup(key)?.Prefetch(0, 4096)));
                }
            """));
    }

    [Fact]
    public async Task Restore_MmReferenceTakenAndDroppedInTheWork_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver("""
                public void ScheduleRestore(Mm mm)
                {
                    if (!mm.MmGetNotZero())
                        return;
                    _wq.Queue(new WorkItem("restore", () =>
                    {
                        try { Restore(mm); }
                        finally { mm.MmPut(); }
                    }));
                }
            """));
    }

    [Fact]
    public async Task Prefetch_SynchronousUseAndNonDeferredLambda_DoesNotFlag()
    {
        // IbvContext.AdviseMr: the prefetch runs in the system call, under the caller's own hold on the MR.
        await Verify.AnalyzerAsync(Driver("""
                public int AdvisePrefetch(Mr[] mrs)
                {
                    foreach (var mr in mrs)
                    {
                        int err = mr.Prefetch(0, 4096);
                        if (err != 0)
                            return err;
                    }
                    return Array.FindIndex(mrs, m => m.Prefetch(0, 1) != 0);
                }
            """));
    }
}
