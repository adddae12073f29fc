using HmmEmu.Hardware.Engines;
using HmmEmu.Kernel;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Engines;

/// <summary>
/// <see cref="EngineWorker{T}.Nudge"/>: the coalesced "look again" that bypasses the channel (the DMA engine's kick).
/// The nudge item here is -1; posted items are non-negative.
/// </summary>
public sealed class EngineWorkerNudgeTests
{
    private const int NudgeItem = -1;

    private static HostKernel NewKernel(SchedulerMode mode = SchedulerMode.Deterministic, ulong seed = 1) =>
        new(KernelOptions.For(seed, mode) with { RamBytes = 16UL << 20 });

    [Fact]
    public void Nudge_WorkerBuiltWithoutANudgeItem_ThrowsNamingTheFix()
    {
        using var kernel = NewKernel();
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", new RecordingHandler(kernel.Scheduler));

        var ex = Assert.Throws<InvalidOperationException>(() => worker.Nudge());

        Assert.Contains("without a nudge item", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Post an item instead", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nudge_SeveralBeforeTheWorkerRuns_ShareOneRunAfterTheItemsPostedBeforeThem()
    {
        using var kernel = NewKernel();
        var handler = new RecordingHandler(kernel.Scheduler, runNs: 10);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler, idleSpinRounds: 0, nudgeItem: NudgeItem);

        kernel.Run(() =>
        {
            // Nothing here yields, so the worker sees all of it at once.
            worker.Post(0);
            Assert.True(worker.Nudge());
            worker.Post(1);
            Assert.True(worker.Nudge());
            Assert.True(worker.Nudge());
            kernel.Scheduler.Sleep(1_000);
            Assert.True(worker.Nudge());     // after the worker took the first ones: a run of its own
            worker.Stop(WorkerStopMode.Drain);
        });

        Assert.Equal([0, 1, NudgeItem, NudgeItem], handler.RanItems);
        Assert.Equal(2L, worker.NudgesHandled);
        Assert.Equal((2L, 2L, 0L), (worker.Posted, worker.Ran, worker.Outstanding));
    }

    [Fact]
    public void Nudge_AfterStopRequested_IsRefused()
    {
        using var kernel = NewKernel();
        var handler = new RecordingHandler(kernel.Scheduler);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler, idleSpinRounds: 0, nudgeItem: NudgeItem);

        worker.RequestStop(WorkerStopMode.Drain);

        Assert.False(worker.Nudge());
        kernel.Run(() => worker.Stop(WorkerStopMode.Drain));
        Assert.Empty(handler.RanItems);
        Assert.Equal(0L, worker.NudgesHandled);
    }

    [Fact]
    public void Stop_AbortWithANudgePending_AbortsTheNudgeItemOnce()
    {
        using var kernel = NewKernel();
        var handler = new RecordingHandler(kernel.Scheduler);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler, idleSpinRounds: 0, nudgeItem: NudgeItem);

        kernel.Run(() =>
        {
            Assert.True(worker.Nudge());
            worker.Stop(WorkerStopMode.Abort);   // no yield in between: the worker first looks after the stop
        });

        Assert.Empty(handler.RanItems);
        Assert.Equal([NudgeItem], handler.AbortedItems);
        Assert.Equal(1L, worker.NudgesHandled);
    }

    [Fact]
    public void TryRunInline_WithANudgePending_RefusesSoTheNudgeStaysFirst()
    {
        using var kernel = NewKernel(SchedulerMode.Threaded);
        using var gate = new ManualResetEventSlim(false);
        var handler = new GatedHandler(gate);
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler, idleSpinRounds: 0, nudgeItem: NudgeItem);

        kernel.Run(() =>
        {
            Assert.True(worker.Nudge());
            // The worker may or may not have taken the nudge yet; while it has not, or while its run waits at the gate,
            // nothing may overtake it.
            Assert.False(worker.TryRunInline(7));
            gate.Set();
            worker.Stop(WorkerStopMode.Drain);
        });

        Assert.Equal([NudgeItem], handler.Ran);
    }

    [Fact]
    public void Nudge_ThreadedMode_TheWorkerAlwaysSeesTheLastWriteBeforeTheLastNudge()
    {
        // In each of 20 rounds the driver writes a value and nudges, 1 000 times with no pause, then waits for the
        // handler to have read the last value. Each run of the handler lasts several microseconds after its read, longer
        // than a nudge takes, so the last nudge of a round usually lands during a run: a worker that cleared the flag
        // after the run instead of before would lose it, the last value would go unread, and the round would time out
        // (that mutation fails here in every run).
        const int Rounds = 20, WritesPerRound = 1_000;
        using var kernel = NewKernel(SchedulerMode.Threaded);
        var handler = new LatestValueHandler();
        using var worker = new EngineWorker<int>(kernel.Scheduler, "w", handler, idleSpinRounds: 10, nudgeItem: NudgeItem);
        var unseen = new List<int>();

        kernel.Run(() =>
        {
            int value = 0;
            for (int round = 0; round < Rounds; round++)
            {
                for (int i = 0; i < WritesPerRound; i++)
                {
                    Volatile.Write(ref handler.Written, ++value);
                    worker.Nudge();
                }
                var spinner = default(SpinWait);
                for (long polls = 0; Volatile.Read(ref handler.Seen) != value && polls < 2_000_000; polls++)
                    spinner.SpinOnce(sleep1Threshold: -1);
                if (Volatile.Read(ref handler.Seen) != value)
                    unseen.Add(value);
            }
            worker.Stop(WorkerStopMode.Drain);
        });

        Assert.Empty(unseen);
        Assert.Equal(Rounds * WritesPerRound, handler.Seen);
        Assert.InRange(worker.NudgesHandled, Rounds, Rounds * WritesPerRound);
        Assert.True(handler.Monotonic, "the handler saw the written value go backwards");
    }

    // Records runs; the nudge item's run waits at the gate.
    private sealed class GatedHandler(ManualResetEventSlim gate) : IEngineWorkHandler<int>
    {
        private readonly Lock _lock = new();
        private readonly List<int> _ran = [];

        public List<int> Ran
        {
            get { lock (_lock) return [.. _ran]; }
        }

        public void Run(int item)
        {
            if (item == NudgeItem)
                gate.Wait();
            lock (_lock)
                _ran.Add(item);
        }

        public void Abort(int item)
        {
        }
    }

    // The nudge item's run reads the driver's last write.
    private sealed class LatestValueHandler : IEngineWorkHandler<int>
    {
        public int Written;
        public int Seen;
        public bool Monotonic = true;

        public void Run(int item)
        {
            int value = Volatile.Read(ref Written);
            if (value < Seen)
                Monotonic = false;
            Volatile.Write(ref Seen, value);
            Thread.SpinWait(200);   // several microseconds, longer than a nudge: the driver's next nudges land during the run
        }

        public void Abort(int item)
        {
        }
    }
}
