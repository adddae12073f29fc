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
}
