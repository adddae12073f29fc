using System.Threading.Channels;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Engines;

/// <summary>
/// A device engine's background worker: a daemon simulated thread that takes items from a
/// <see cref="Channel{T}"/> and hands each to an <see cref="IEngineWorkHandler{T}"/>, in posting order, one at a time.
/// The channel holds the items; a <see cref="SimWaitQueue"/> does the waiting, so in deterministic mode every wake-up
/// is a scheduling decision of the seed and in threaded mode the worker runs on its own real thread.
/// </summary>
/// <remarks>
/// <para>
/// Every item accepted by <see cref="Post"/> is handled exactly once: run, or aborted when the worker stops in
/// <see cref="WorkerStopMode.Abort"/> mode. An item refused by <see cref="Post"/> (after a stop) was not accepted and
/// stays the caller's. The worker thread is a daemon: an idle worker does not keep <see cref="Scheduler.Run(Action?)"/> from
/// returning.
/// </para>
/// <para>
/// A worker built with a nudge item also takes <see cref="Nudge"/>: a doorbell's "look again", which carries no data,
/// and of which all that arrive before the worker takes them share one run. It bypasses the channel: a nudge sets a
/// flag on a cache line of its own, which in threaded mode costs the driver one cache-line transfer, where a channel
/// write costs several (the writer's lock, the queue's slot, the wake-up's fence); measured in docs/benchmarks.md (e).
/// The worker runs the nudge item when its queue is empty, so after every item posted before the nudge.
/// </para>
/// </remarks>
/// <typeparam name="T">The work item type.</typeparam>
public sealed class EngineWorker<T> : IDisposable
{
    private const int Running = 0;
    private const int Draining = 1;
    private const int Aborting = 2;
    private const int SpinIterations = 16;

    private readonly Scheduler _scheduler;
    private readonly IEngineWorkHandler<T> _handler;
    private readonly Channel<T> _channel;
    private readonly SimWaitQueue _wake;
    private readonly SimThread _thread;
    private readonly int _spinRounds;
    private int _mode;
    private int _busy;      // 1 while an item is handled, by the worker or inline (TryRunInline); 1 for good once it exits
    private SimThread? _inlineThread;       // the thread running an item inline, while it does
    private readonly bool _hasNudge;
    private readonly T _nudgeItem;
    private long _ran;
    private long _aborted;
    private long _nudgesHandled;
    // Written by the posting threads; on a cache line of its own, so that a post does not take the line the worker
    // writes for every item (_busy, _ran) from the worker's processor, nor the worker take it back.
    private PaddedCounter _posted;
    // 1 from a nudge until the worker takes it: set by the nudging threads, cleared by the worker.
    private PaddedCounter _nudge;

    /// <summary>Creates the worker and spawns its simulated thread (a daemon of kind <see cref="SimThreadKind.Device"/>).</summary>
    /// <param name="scheduler">The scheduler the worker runs on.</param>
    /// <param name="name">The worker's name, for traces and deadlock reports.</param>
    /// <param name="handler">Runs or aborts each item.</param>
    /// <param name="idleSpinRounds">
    /// Threaded mode only: how many rounds (each 16 <c>Thread.SpinWait(1)</c> calls, a fixed run of pause instructions
    /// with a look for work after each — no clock is read) the idle worker spins for the next item or nudge before it
    /// sleeps; zero sleeps at once. Ignored in deterministic mode and on a single processor.
    /// </param>
    public EngineWorker(Scheduler scheduler, string name, IEngineWorkHandler<T> handler, int idleSpinRounds = 0)
        : this(scheduler, name, handler, idleSpinRounds, hasNudge: false, nudgeItem: default!)
    {
    }

    /// <summary>
    /// Creates a worker that also takes <see cref="Nudge"/>, running <paramref name="nudgeItem"/> for it; otherwise as
    /// the constructor without a nudge item.
    /// </summary>
    /// <param name="scheduler">The scheduler the worker runs on.</param>
    /// <param name="name">The worker's name, for traces and deadlock reports.</param>
    /// <param name="handler">Runs or aborts each item.</param>
    /// <param name="idleSpinRounds">As for the constructor without a nudge item.</param>
    /// <param name="nudgeItem">
    /// What the handler runs for a nudge: an idempotent "look again" (the DMA engine's kick), since nudges that arrive
    /// before the worker takes the first one are covered by it.
    /// </param>
    public EngineWorker(Scheduler scheduler, string name, IEngineWorkHandler<T> handler, int idleSpinRounds, T nudgeItem)
        : this(scheduler, name, handler, idleSpinRounds, hasNudge: true, nudgeItem)
    {
    }

    private EngineWorker(Scheduler scheduler, string name, IEngineWorkHandler<T> handler, int idleSpinRounds, bool hasNudge,
        T nudgeItem)
    {
        _hasNudge = hasNudge;
        _nudgeItem = nudgeItem;
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(handler);
        _scheduler = scheduler;
        _handler = handler;
        Name = name;
        // The worker is the only reader (a single-consumer channel takes no lock to read); writers are any thread.
        _channel = Channel.CreateUnbounded<T>(new UnboundedChannelOptions
        {
            SingleReader = true,
            SingleWriter = false,
            AllowSynchronousContinuations = false,
        });
        _wake = new SimWaitQueue(scheduler, $"engine {name} idle");
        ArgumentOutOfRangeException.ThrowIfNegative(idleSpinRounds);
        _spinRounds = scheduler.Mode == SchedulerMode.Threaded && Environment.ProcessorCount > 1 ? idleSpinRounds : 0;
        _thread = scheduler.Spawn(name, Loop, SimThreadKind.Device, daemon: true);
    }

    /// <summary>The worker's name.</summary>
    public string Name { get; }

    /// <summary>The worker's simulated thread.</summary>
    public SimThread Thread => _thread;

    /// <summary>Items accepted by <see cref="Post"/>.</summary>
    public long Posted => Interlocked.Read(ref _posted.Value);

    /// <summary>Items the handler ran.</summary>
    public long Ran => Interlocked.Read(ref _ran);

    /// <summary>Items the handler aborted.</summary>
    public long Aborted => Interlocked.Read(ref _aborted);

    /// <summary>Runs (or aborts) of the nudge item; nudges that came before the worker took them share one.</summary>
    public long NudgesHandled => Interlocked.Read(ref _nudgesHandled);

    /// <summary>Items accepted and not yet handled (run or aborted), including one in progress.</summary>
    public long Outstanding => Posted - Ran - Aborted;

    /// <summary>Whether the worker thread has exited.</summary>
    public bool IsStopped => _thread.IsFinished;

    /// <summary>
    /// Queues <paramref name="item"/> and wakes the worker. Returns false, without taking the item, once a stop was
    /// requested. Never sleeps; safe from any thread and from interrupt context.
    /// </summary>
    public bool Post(T item)
    {
        // Count first, so that Outstanding never goes negative while the worker races ahead.
        Interlocked.Increment(ref _posted.Value);
        if (!_channel.Writer.TryWrite(item))
        {
            Interlocked.Decrement(ref _posted.Value);
            return false;
        }
        _wake.WakeAll();
        return true;
    }

    /// <summary>
    /// Asks the worker to run its nudge item once its queue is empty, unless a nudge it has not yet taken is pending
    /// (which then covers this one). Returns false, doing nothing, once a stop was requested; a nudge that races a stop
    /// request may be dropped, as a doorbell rung during a shutdown. Never sleeps; safe from any thread and from
    /// interrupt context. Throws if the worker was built without a nudge item.
    /// </summary>
    public bool Nudge()
    {
        if (!_hasNudge)
        {
            throw new InvalidOperationException(
                $"Engine worker '{Name}' was built without a nudge item, so it cannot be nudged: build it with the " +
                "constructor that takes one, or Post an item instead.");
        }
        if (Volatile.Read(ref _mode) != Running)
            return false;
        // A full fence: the caller's writes (a producer index) are visible before the flag, and the flag before the
        // wake-up looks for a sleeping worker. A flag already set covers this nudge: the worker has not taken it yet.
        if (Interlocked.Exchange(ref _nudge.Value, 1) == 0)
            _wake.WakeAll();
        return true;
    }

    /// <summary>
    /// Threaded mode only: runs <paramref name="item"/> at once on the calling thread, as the worker would, when the
    /// worker is idle (nothing queued, nothing in progress) and not stopping. Returns false, without taking the item,
    /// otherwise (always in deterministic mode, where who runs what is the seed's decision); the caller then posts it.
    /// </summary>
    /// <remarks>
    /// Items stay in posting order and one at a time: the worker takes each item while it holds the same busy flag, and
    /// an inline run starts only when every accepted item has been handled. Never waits for the flag: a busy worker
    /// means "post instead". The handler runs on the caller's thread and clock, so only a caller that holds no lock the
    /// handler might take, and that may do the handler's work (it may sleep if the handler does), should call this.
    /// It saves the wake-up of a sleeping worker thread, which costs microseconds of operating-system time per hand-off.
    /// </remarks>
    public bool TryRunInline(T item)
    {
        if (_scheduler.Mode != SchedulerMode.Threaded || Volatile.Read(ref _mode) != Running ||
            Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            return false;
        }
        try
        {
            if (Outstanding != 0 || NudgePending || Volatile.Read(ref _mode) != Running)
                return false;
            Interlocked.Increment(ref _posted.Value);
            Volatile.Write(ref _inlineThread, Scheduler.CurrentThread);
            try
            {
                _handler.Run(item);
            }
            finally
            {
                Volatile.Write(ref _inlineThread, null);
                Interlocked.Increment(ref _ran);        // handled, even if the handler threw: Outstanding stays exact
            }
            return true;
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>
    /// Tells the worker to stop after handling every queued item as <paramref name="mode"/> says; returns at once.
    /// Later <see cref="Post"/> calls are refused. The first request's mode wins, except that an abort request
    /// overrides an earlier drain for the items not yet handled. Never sleeps.
    /// </summary>
    public void RequestStop(WorkerStopMode mode)
    {
        int wanted = mode == WorkerStopMode.Abort ? Aborting : Draining;
        int seen;
        do
        {
            seen = Volatile.Read(ref _mode);
            if (seen >= wanted)
                break;
        }
        while (Interlocked.CompareExchange(ref _mode, wanted, seen) != seen);
        _channel.Writer.TryComplete();
        _wake.WakeAll();
    }

    /// <summary>
    /// Stops the worker (see <see cref="RequestStop"/>) and waits until it has handled every queued item and exited.
    /// May sleep: call it from a simulated thread, or from a host thread in threaded mode.
    /// </summary>
    public void Stop(WorkerStopMode mode)
    {
        if (IsHandlerThread())
        {
            throw new InvalidOperationException(
                $"Engine worker '{Name}' was told to Stop from its own thread, which would wait for itself forever. " +
                "From a handler, call RequestStop instead.");
        }
        if (!_scheduler.IsSimulatedThread && _scheduler.Mode == SchedulerMode.Deterministic)
        {
            throw new InvalidOperationException(
                $"Engine worker '{Name}': Stop waits for the worker, which in deterministic mode only runs inside " +
                "Scheduler.Run. Call Stop inside kernel.Run(() => ...), or call Dispose, which runs the simulation for you.");
        }
        RequestStop(mode);
        _thread.Join();
    }

    /// <summary>
    /// Stops the worker, aborting queued items, and waits for it. From a host thread in deterministic mode this runs
    /// the simulation (<see cref="Scheduler.Run(Action?)"/>) until the worker has exited, so it must not race a Run on another
    /// host thread. Does nothing more if the scheduler was already disposed.
    /// </summary>
    public void Dispose()
    {
        RequestStop(WorkerStopMode.Abort);
        if (_thread.IsFinished || IsHandlerThread())
            return;
        try
        {
            if (_scheduler.IsSimulatedThread || _scheduler.Mode == SchedulerMode.Threaded)
                _thread.Join();
            else
                _scheduler.Run(_thread.Join);
        }
        catch (ObjectDisposedException)
        {
            // The machine is gone; so are its threads.
        }
        catch (SimulationAbortedException)
        {
            // The scheduler is shutting down and unwound the worker with everything else.
        }
    }

    // Whether the caller runs inside this worker's handler: on the worker thread, or inline (TryRunInline). Joining the
    // worker from there would wait for itself.
    private bool IsHandlerThread()
    {
        var current = Scheduler.CurrentThread;
        return ReferenceEquals(current, _thread) || (current is not null && ReferenceEquals(current, Volatile.Read(ref _inlineThread)));
    }

    // Worker thread only (the channel has one reader): its wait condition and its idle spin.
    private bool HasItemOrCompleted() =>
        _channel.Reader.TryPeek(out _) || NudgePending || _channel.Reader.Completion.IsCompleted;

    // Whether a nudge came since the worker last took one.
    private bool NudgePending => Volatile.Read(ref _nudge.Value) != 0;

    // Runs on the worker's simulated thread only.
    private void Loop()
    {
        var reader = _channel.Reader;
        while (true)
        {
            if (_spinRounds != 0)
                SpinForItem();
            _wake.WaitUntil(this, static w => w.HasItemOrCompleted());
            while (true)
            {
                TakeBusy();
                if (reader.TryRead(out var item))
                {
                    if (Volatile.Read(ref _mode) == Aborting)
                    {
                        _handler.Abort(item);
                        Interlocked.Increment(ref _aborted);
                    }
                    else
                    {
                        _handler.Run(item);
                        Interlocked.Increment(ref _ran);
                    }
                }
                else if (!TryHandleNudge())
                {
                    Volatile.Write(ref _busy, 0);
                    break;
                }
                Volatile.Write(ref _busy, 0);
            }
            if (reader.Completion.IsCompleted)
            {
                TakeBusy();     // waits for an inline run in progress, and keeps later ones out: the worker is done
                TryHandleNudge();   // one that came before the stop, after the last look
                return;
            }
        }
    }

    // Worker thread, holding the busy flag, queue empty: takes the pending nudge and runs (or, stopping with abort,
    // aborts) the nudge item once for every nudge so far. A nudge during the run sets the flag again: another run.
    private bool TryHandleNudge()
    {
        // Clearing with a full fence before the run: what the run reads (a producer index) is read after the clear, so a
        // nudge whose flag this clear takes was sent after writes the run sees, and a later one sets the flag again.
        if (Volatile.Read(ref _nudge.Value) == 0 || Interlocked.Exchange(ref _nudge.Value, 0) == 0)
            return false;
        if (Volatile.Read(ref _mode) == Aborting)
            _handler.Abort(_nudgeItem);
        else
            _handler.Run(_nudgeItem);
        Interlocked.Increment(ref _nudgesHandled);
        return true;
    }

    // Takes the busy flag, waiting out an inline run (threaded mode only; it is never contended in deterministic mode).
    private void TakeBusy()
    {
        if (Interlocked.CompareExchange(ref _busy, 1, 0) == 0)
            return;
        var spinner = default(SpinWait);
        while (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
            spinner.SpinOnce();
    }

    /// <summary>
    /// Threaded mode only, when asked for: spins a bounded number of rounds for the next item before the worker goes
    /// to sleep. A driver usually rings the doorbell again soon after a completion; finding the worker awake, the
    /// hand-off costs a cache-line transfer instead of waking a blocked thread (tens of µs on the project machine), as
    /// with the spin of ManualResetEventSlim and SemaphoreSlim. Never in deterministic mode, where a wait is a
    /// scheduling decision. Runs on the worker's simulated thread only.
    /// </summary>
    private void SpinForItem()
    {
        for (int spins = _spinRounds * SpinIterations; spins > 0 && !HasItemOrCompleted(); spins--)
            System.Threading.Thread.SpinWait(1);
    }
}
