using HmmEmu.Hardware.Engines;
using HmmEmu.Kernel;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Engines;

public sealed class EngineWorkerTests
{
    private static HostKernel NewKernel(SchedulerMode mode = SchedulerMode.Deterministic, ulong seed = 1) =>
        new(KernelOptions.For(seed, mode) with { RamBytes = 16UL << 20 });

    [Fact]
    public void Post_ManyItems_RunsEachOnceInPostingOrder()
    {
        using var kernel = NewKernel();
        var handler = new RecordingHandler(kernel.Scheduler, runNs: 10);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);

        kernel.Run(() =>
        {
            for (int i = 0; i < 100; i++)
                worker.Post(i);
            worker.Stop(WorkerStopMode.Drain);
        });

        Assert.Equal(Enumerable.Range(0, 100), handler.RanItems);
        Assert.Empty(handler.AbortedItems);
    }

    [Fact]
    public void Stop_AbortWithItemsQueued_HandlesEveryItemExactlyOnce()
    {
        using var kernel = NewKernel();
        var handler = new RecordingHandler(kernel.Scheduler, runNs: 1_000);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);

        kernel.Run(() =>
        {
            for (int i = 0; i < 50; i++)
                worker.Post(i);
            kernel.Scheduler.Sleep(2_500); // the worker gets through a few items
            worker.Stop(WorkerStopMode.Abort);
        });

        Assert.NotEmpty(handler.RanItems);
        Assert.NotEmpty(handler.AbortedItems);
        Assert.Equal(Enumerable.Range(0, 50), handler.RanItems.Concat(handler.AbortedItems).Order());
        Assert.Equal(0L, worker.Outstanding);
    }

    [Fact]
    public void Post_AfterStopRequested_IsRefused()
    {
        using var kernel = NewKernel();
        var handler = new RecordingHandler(kernel.Scheduler);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);

        worker.RequestStop(WorkerStopMode.Drain);

        Assert.False(worker.Post(1));
        Assert.Equal(0L, worker.Posted);
    }

    [Fact]
    public void Dispose_FromHostThreadInDeterministicMode_AbortsQueuedItemsAndStops()
    {
        using var kernel = NewKernel();
        var handler = new RecordingHandler(kernel.Scheduler);
        var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);
        for (int i = 0; i < 10; i++)
            worker.Post(i);

        worker.Dispose();

        Assert.Equal(Enumerable.Range(0, 10), handler.AbortedItems);
        Assert.True(worker.IsStopped);
    }

    [Fact]
    public void Stop_FromHostThreadInDeterministicMode_ThrowsNamingTheFix()
    {
        using var kernel = NewKernel();
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", new RecordingHandler(kernel.Scheduler));

        var ex = Assert.Throws<InvalidOperationException>(() => worker.Stop(WorkerStopMode.Drain));

        Assert.Contains("kernel.Run", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Worker_IdleWorker_DoesNotKeepRunFromReturning()
    {
        using var kernel = NewKernel();
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", new RecordingHandler(kernel.Scheduler));
        bool ran = false;

        kernel.Run(() => ran = true);

        Assert.True(ran);
        Assert.False(worker.IsStopped);
    }

    [Fact]
    public void Worker_ThreadedMode_RunsEveryItemOnce()
    {
        using var kernel = NewKernel(SchedulerMode.Threaded);
        var handler = new RecordingHandler(kernel.Scheduler, runNs: 5);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);

        kernel.Run(() =>
        {
            for (int i = 0; i < 1000; i++)
                worker.Post(i);
            worker.Stop(WorkerStopMode.Drain);
        });

        Assert.Equal(Enumerable.Range(0, 1000), handler.RanItems);
    }

    [Fact]
    public void Worker_SameSeed_SameTraceHash()
    {
        static ulong RunOnce(ulong seed)
        {
            using var kernel = NewKernel(seed: seed);
            var handler = new RecordingHandler(kernel.Scheduler, runNs: 300);
            using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);
            kernel.Run(() =>
            {
                for (int i = 0; i < 20; i++)
                {
                    worker.Post(i);
                    kernel.Scheduler.Sleep(100);
                }
                worker.Stop(WorkerStopMode.Drain);
            });
            return kernel.Trace.Hash;
        }

        Assert.Equal(RunOnce(42), RunOnce(42));
    }
    [Fact]
    public void TryRunInline_DeterministicMode_RefusesSoTheSeedDecidesWhoRuns()
    {
        using var kernel = NewKernel();
        var handler = new RecordingHandler(kernel.Scheduler);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);
        bool ran = true;

        kernel.Run(() => ran = worker.TryRunInline(1));

        Assert.False(ran);
        Assert.Empty(handler.RanItems);
        Assert.Equal(0L, worker.Posted);
    }

    [Fact]
    public void TryRunInline_ThreadedIdleWorker_RunsOnTheCallersThreadAndCountsTheItem()
    {
        using var kernel = NewKernel(SchedulerMode.Threaded);
        var handler = new ThreadRecordingHandler();
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);
        SimThread? caller = null;
        bool ran = false;

        kernel.Run(() =>
        {
            caller = Scheduler.CurrentThread;
            ran = worker.TryRunInline(7);
        });

        Assert.True(ran);
        Assert.Equal([(7, caller)], handler.Ran);
        Assert.Equal((1L, 1L, 0L), (worker.Posted, worker.Ran, worker.Outstanding));
    }

    [Fact]
    public void TryRunInline_ThreadedWorkerBusy_RefusesAndPostingOrderIsKept()
    {
        using var kernel = NewKernel(SchedulerMode.Threaded);
        using var gate = new ManualResetEventSlim();
        var handler = new ThreadRecordingHandler(blockOn: 1, gate);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);
        bool whileRunning = true, afterwards = false;

        kernel.Run(() =>
        {
            worker.Post(1);                         // the worker blocks inside the handler
            while (!handler.Started(1))
                Thread.Yield();
            whileRunning = worker.TryRunInline(2);  // busy: refused, and 2 stays the caller's
            worker.Post(3);
            gate.Set();
            afterwards = worker.TryRunInline(4);    // refused while 1 or 3 is not done; never ahead of them
            worker.Stop(WorkerStopMode.Drain);
        });

        Assert.False(whileRunning);
        Assert.Equal(afterwards ? [1, 3, 4] : [1, 3], handler.Ran.Select(r => r.Item));
        Assert.Equal(0L, worker.Outstanding);
    }

    [Fact]
    public void TryRunInline_HandlerThrows_TheItemCountsAsHandledAndLaterRunsAreNotRefused()
    {
        using var kernel = NewKernel(SchedulerMode.Threaded);
        var handler = new ThreadRecordingHandler(throwOn: 1);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);
        bool second = false;

        kernel.Run(() =>
        {
            Assert.Throws<InvalidOperationException>(() => worker.TryRunInline(1));
            second = worker.TryRunInline(2);
        });

        Assert.True(second);
        Assert.Equal([2], handler.Ran.Select(r => r.Item));
        Assert.Equal((2L, 2L, 0L), (worker.Posted, worker.Ran, worker.Outstanding));
    }

    [Fact]
    public void Stop_FromAHandlerRunningInline_ThrowsInsteadOfWaitingForItself()
    {
        using var kernel = NewKernel(SchedulerMode.Threaded);
        EngineWorker<int>? worker = null;
        Exception? stop = null;
        var handler = new ThreadRecordingHandler(onRun: _ => stop = Record.Exception(() => worker!.Stop(WorkerStopMode.Drain)));
        worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);
        using var disposeWorker = worker;

        kernel.Run(() => Assert.True(worker.TryRunInline(1)));

        Assert.Contains("its own thread", Assert.IsType<InvalidOperationException>(stop).Message);
    }

    [Fact]
    public void TryRunInline_AfterStopRequested_IsRefused()
    {
        using var kernel = NewKernel(SchedulerMode.Threaded);
        var handler = new ThreadRecordingHandler();
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler);

        worker.RequestStop(WorkerStopMode.Drain);

        Assert.False(worker.TryRunInline(1));
        Assert.Empty(handler.Ran);
    }

    // Records (item, simulated thread) per run; optionally blocks in the run of one item until a gate opens.
    private sealed class ThreadRecordingHandler(int blockOn = -1, ManualResetEventSlim? gate = null, int throwOn = -1,
        Action<int>? onRun = null) : IEngineWorkHandler<int>
    {
        private readonly Lock _lock = new();
        private readonly List<(int Item, SimThread? Thread)> _ran = [];
        private int _started = -1;

        public List<(int Item, SimThread? Thread)> Ran
        {
            get { lock (_lock) return [.. _ran]; }
        }

        public bool Started(int item) => Volatile.Read(ref _started) == item;

        public void Run(int item)
        {
            Volatile.Write(ref _started, item);
            if (item == blockOn)
                gate!.Wait();
            if (item == throwOn)
                throw new InvalidOperationException($"item {item} fails");
            onRun?.Invoke(item);
            lock (_lock)
                _ran.Add((item, Scheduler.CurrentThread));
        }

        public void Abort(int item)
        {
        }
    }
}
