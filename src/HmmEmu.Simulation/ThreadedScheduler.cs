using System.Text;

namespace HmmEmu.Simulation;

/// <summary>
/// Runs simulated threads in parallel on real OS threads. Yield points cost nothing, waits are monitor waits, and
/// each thread keeps its own virtual timeline. Not deterministic by design: it is the stress and throughput mode.
/// </summary>
internal sealed class ThreadedScheduler : Scheduler
{
    private static readonly TimeSpan s_abortPoll = TimeSpan.FromMilliseconds(50);

    private readonly object _gate = new();
    private readonly List<SimThread> _live = [];
    private int _nonDaemonAlive;
    private ulong _horizon;
    private ulong _hostTime;
    private volatile bool _aborting;
    private Exception? _failure;
    private bool _disposed;

    public ThreadedScheduler(SimulationOptions options) : base(options) { }

    internal override bool IsAborting => _aborting;

    internal override ulong CurrentTime()
    {
        var me = CurrentThread;
        if (me is not null && ReferenceEquals(me.Scheduler, this))
            return Volatile.Read(ref me.LocalTime);
        return Volatile.Read(ref _hostTime);
    }

    internal override ulong HorizonTime() => Math.Max(Volatile.Read(ref _horizon), Volatile.Read(ref _hostTime));

    private protected override void Register(SimThread thread)
    {
        lock (_gate)
        {
            if (_aborting)
                throw new ObjectDisposedException(nameof(Scheduler), "The scheduler was stopped; no new threads can be spawned.");
            thread.SetState(SimThreadState.Running);
            _live.Add(thread);
            if (!thread.IsDaemon)
                _nonDaemonAlive++;
        }
    }

    private protected override void WaitForFirstTurn(SimThread thread) { }

    private protected override void RunCore(string? name, Action? main, SimThreadKind kind)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_failure is not null)
                throw new InvalidOperationException("An earlier Run of this scheduler failed; create a new machine to run again.", _failure);
        }
        // The host does not carry main here: it stays free to run the watchdog.
        if (main is not null)
            Spawn(name!, main, kind);
        lock (_gate)
        {
            var deadline = Options.ThreadedWatchdog;
            while (_nonDaemonAlive > 0)
            {
                // The watchdog only guards the host against a hung simulation; it never feeds the simulation.
                if (!Monitor.Wait(_gate, deadline))
                {
                    _failure ??= new SimulationDeadlockException(DescribeHangLocked());
                    _aborting = true;
                    break;
                }
            }
        }
        Exception? failure;
        lock (_gate) failure = _failure;
        if (failure is not null)
            Rethrow(failure);
    }

    public override void Yield() { }

    public override void Sleep(ulong ns)
    {
        Charge(ns);
        // Give other real threads a chance to run, roughly in proportion to the virtual delay.
        int spins = (int)Math.Min(ns / 1_000, 64);
        for (int i = 0; i <= spins; i++)
            Thread.Yield();
    }

    public override void Charge(ulong ns)
    {
        var me = CurrentThread;
        ulong t;
        if (me is not null && ReferenceEquals(me.Scheduler, this))
            t = Interlocked.Add(ref me.LocalTime, ns);
        else
            t = Interlocked.Add(ref _hostTime, ns);
        UpdateHorizon(t);
    }

    internal override void WaitOn<TState>(SimWaitQueue queue, TState state, Func<TState, bool> condition)
    {
        var me = CurrentThread;
        lock (queue.Monitor)
        {
            Interlocked.Increment(ref queue.ThreadedWaiterCount);
            try
            {
                if (me is not null)
                    me.WaitReason = queue.Name;
                while (!condition(state))
                {
                    if (_aborting)
                        throw new SimulationAbortedException();
                    Monitor.Wait(queue.Monitor, s_abortPoll);
                }
            }
            finally
            {
                Interlocked.Decrement(ref queue.ThreadedWaiterCount);
                if (me is not null)
                    me.WaitReason = null;
            }
        }
        if (me is not null && ReferenceEquals(me.Scheduler, this))
        {
            // A woken thread continues no earlier than the virtual time of the thread that woke it.
            ulong waker = Volatile.Read(ref queue.LastWakerTime);
            ulong mine;
            do
            {
                mine = Volatile.Read(ref me.LocalTime);
                if (mine >= waker)
                    break;
            }
            while (Interlocked.CompareExchange(ref me.LocalTime, waker, mine) != mine);
        }
    }

    internal override void WakeAll(SimWaitQueue queue)
    {
        // The waker's state change must be visible before we look for waiters (store-load ordering).
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref queue.ThreadedWaiterCount) == 0)
            return;
        ulong now = CurrentTime();
        lock (queue.Monitor)
        {
            if (now > queue.LastWakerTime)
                queue.LastWakerTime = now;
            Monitor.PulseAll(queue.Monitor);
        }
    }

    private protected override void OnThreadExit(SimThread thread, Exception? failure)
    {
        UpdateHorizon(Volatile.Read(ref thread.LocalTime));
        lock (_gate)
        {
            thread.SetState(SimThreadState.Finished);
            _live.Remove(thread);
            if (failure is not null && _failure is null)
            {
                _failure = failure;
                // Threads that were waiting on the failed one would wait forever: unwind them.
                _aborting = true;
            }
            if (!thread.IsDaemon)
                _nonDaemonAlive--;
            Monitor.PulseAll(_gate);
        }
        thread.ExitQueue.WakeAll();
    }

    private protected override void OnThreadAborted(SimThread thread) => OnThreadExit(thread, null);

    private void UpdateHorizon(ulong t)
    {
        ulong h;
        do
        {
            h = Volatile.Read(ref _horizon);
            if (h >= t)
                return;
        }
        while (Interlocked.CompareExchange(ref _horizon, t, h) != h);
    }

    private string DescribeHangLocked()
    {
        var sb = new StringBuilder();
        sb.Append("Threaded simulation made no progress for ").Append(Options.ThreadedWatchdog)
          .AppendLine(" of host time; threads still alive:");
        foreach (var t in _live)
            sb.Append("  T").Append(t.Id).Append(" '").Append(t.Name).Append("' ")
              .Append(t.WaitReason is null ? "running" : "waiting on " + t.WaitReason).AppendLine();
        sb.Append("Re-run in deterministic mode with the same workload to get a reproducible deadlock report.");
        return sb.ToString();
    }

    protected override void Dispose(bool disposing)
    {
        SimThread[] threads;
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            _aborting = true;
            threads = [.. _live];
        }
        foreach (var t in threads)
            t.WaitUnwound(TimeSpan.FromSeconds(10));
    }
}
