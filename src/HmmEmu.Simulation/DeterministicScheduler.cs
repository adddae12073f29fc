using System.Text;

namespace HmmEmu.Simulation;

/// <summary>
/// Runs one simulated thread at a time. Each thread runs on an OS thread of its own (a pooled carrier), but only the holder of the baton runs;
/// at a yield point, a block or a charge of virtual time it hands the baton to the thread the seeded decision
/// stream picks. Virtual time advances only when no thread is runnable, to the earliest sleeper's wake time.
/// </summary>
internal sealed class DeterministicScheduler : Scheduler
{
    private static readonly TraceEventType s_switchEvent = new("sched", "switch", "from", "to");

    private readonly Lock _gate = new();
    private readonly List<SimThread> _live = [];
    private readonly List<SimThread> _runnable = [];
    private readonly PriorityQueue<SimThread, (ulong Wake, long Order)> _sleepers = new();
    private readonly SimRandom _decisions;
    private readonly List<int> _decisionLog = [];
    private readonly ManualResetEventSlim _runDone = new(false);
    private long _sleepOrder;
    private ulong _now;
    private bool _runActive;
    private volatile bool _aborting;
    private bool _disposed;
    private Exception? _failure;
    // The thread the host carries in the current Run (Scheduler.Run with a body), if any.
    private SimThread? _carried;
    // While Settle runs: sleepers due by then are woken even when only daemons are left (0 = not settling).
    private ulong _settleDeadline;

    public DeterministicScheduler(SimulationOptions options) : base(options)
    {
        if (options.SwitchProbability is < 0 or > 1 || double.IsNaN(options.SwitchProbability))
            throw new ArgumentOutOfRangeException(nameof(options), options.SwitchProbability, "SwitchProbability must be within [0, 1].");
        _decisions = CreateRandom("scheduler.decisions");
    }

    internal override bool IsAborting => _aborting;

    public override IReadOnlyList<int> Decisions
    {
        get
        {
            lock (_gate)
                return [.. _decisionLog];
        }
    }

    internal override ulong CurrentTime() => Volatile.Read(ref _now);

    internal override ulong HorizonTime() => Volatile.Read(ref _now);

    private protected override void Register(SimThread thread)
    {
        lock (_gate)
        {
            if (_aborting)
                throw new ObjectDisposedException(nameof(Scheduler), "The scheduler was disposed; no new threads can be spawned.");
            thread.SetState(SimThreadState.Runnable);
            _live.Add(thread);
            InsertRunnableLocked(thread);
        }
    }

    private protected override void WaitForFirstTurn(SimThread thread)
    {
        thread.Baton.Wait();
        if (MustAbort(thread))
            throw new SimulationAbortedException();
    }

    // A thread unwinds when the scheduler is disposed, or when it is the host-carried thread of a run that ended
    // without it (a failure elsewhere, a deadlock): the host must get back to its caller.
    private bool MustAbort(SimThread me) => _aborting || me.AbortRequested;

    private protected override void RunCore(string? name, Action? main, SimThreadKind kind)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_failure is not null)
                throw new InvalidOperationException(
                    "An earlier Run of this scheduler failed and left simulated threads stopped mid-way; create a new machine to run again.",
                    _failure);
            if (_runActive)
                throw new InvalidOperationException("Scheduler.Run is already running on another host thread.");
        }
        var carried = main is null ? null : CreateThread(name!, main, kind, daemon: false);

        SimThread? first;
        lock (_gate)
        {
            _runActive = true;
            _carried = carried;
            _runDone.Reset();
            first = PickNextLocked(null);
            if (first is null)
            {
                FinishRunLocked();
            }
            else
            {
                first.SetState(SimThreadState.Running);
            }
        }
        first?.Baton.Release();
        if (carried is not null)
            Carry(carried);
        _runDone.Wait();
        Exception? failure;
        lock (_gate)
            failure = _failure;
        if (failure is not null)
            Rethrow(failure);
    }

    private protected override bool SettleCore(ulong maxNs)
    {
        lock (_gate)
            _settleDeadline = _now > ulong.MaxValue - maxNs ? ulong.MaxValue : _now + maxNs;
        try
        {
            RunCore(null, null, SimThreadKind.User);
        }
        finally
        {
            lock (_gate)
                _settleDeadline = 0;
        }
        lock (_gate)
        {
            foreach (var (t, _) in _sleepers.UnorderedItems)
            {
                if (t.State == SimThreadState.Sleeping)
                    return false;   // any sleeper will do: the order decides nothing
            }
            return true;
        }
    }

    public override void Yield()
    {
        var me = CurrentThread;
        if (me is null || !ReferenceEquals(me.Scheduler, this) || !_runActive)
            return;
        lock (_gate)
        {
            // Cheap exit: nobody else could run, and nobody is due to wake.
            if (_runnable.Count == 0 && !SleeperDueLocked())
                return;
            me.SetState(SimThreadState.Runnable);
        }
        SwitchFrom(me);
    }

    public override void Sleep(ulong ns)
    {
        var me = CurrentThread;
        if (me is null || !ReferenceEquals(me.Scheduler, this) || !_runActive)
        {
            // A host thread outside Run is alone in the simulation: time simply passes for it.
            lock (_gate) _now += ns;
            return;
        }
        lock (_gate)
        {
            me.WakeTime = _now + ns;
            me.SetState(SimThreadState.Sleeping);
            _sleepers.Enqueue(me, (me.WakeTime, _sleepOrder++));
        }
        SwitchFrom(me);
    }

    public override void Charge(ulong ns)
    {
        if (ns == 0)
            return;
        Sleep(ns);
    }

    internal override void WaitOn<TState>(SimWaitQueue queue, TState state, Func<TState, bool> condition)
    {
        var me = CurrentThread;
        if (me is null || !ReferenceEquals(me.Scheduler, this) || !_runActive)
        {
            throw new SimulationDeadlockException(
                $"A host thread must wait on '{queue.Name}', but it is not a simulated thread of a running simulation, " +
                "so no other thread can ever satisfy the wait. Do this inside Scheduler.Run (or HostKernel.Run).");
        }
        while (true)
        {
            lock (_gate)
            {
                if (MustAbort(me))
                    throw new SimulationAbortedException();
                if (condition(state))
                    return;
                queue.Waiters.Add(me);
                me.WaitReason = queue.Name;
                me.SetState(SimThreadState.Blocked);
            }
            SwitchFrom(me);
        }
    }

    internal override void WakeAll(SimWaitQueue queue)
    {
        // Only the baton holder runs, so nobody can be adding a waiter right now: an empty queue needs no lock.
        if (queue.Waiters.Count == 0)
            return;
        lock (_gate)
        {
            var waiters = queue.Waiters;
            if (waiters.Count == 0)
                return;
            foreach (var t in waiters)
                MakeRunnableLocked(t);
            waiters.Clear();
        }
    }

    private protected override void OnThreadExit(SimThread thread, Exception? failure)
    {
        if (failure is not null)
        {
            lock (_gate)
            {
                thread.SetState(SimThreadState.Finished);
                _live.Remove(thread);
                _runnable.Remove(thread);
                _failure ??= failure;
                EndRunLocked();
            }
            return;
        }
        lock (_gate)
        {
            thread.SetState(SimThreadState.Finished);
            _live.Remove(thread);
            _runnable.Remove(thread);
        }
        thread.ExitQueue.WakeAll();
        SwitchFrom(thread);
    }

    private protected override void OnThreadAborted(SimThread thread)
    {
        lock (_gate)
        {
            thread.SetState(SimThreadState.Finished);
            _live.Remove(thread);
            _runnable.Remove(thread);
        }
    }

    /// <summary>
    /// Gives up the baton: picks the next thread (possibly <paramref name="me"/> again if it is runnable), hands it
    /// the baton and, unless <paramref name="me"/> has finished, waits to be picked again.
    /// </summary>
    private void SwitchFrom(SimThread me)
    {
        SimThread? next;
        lock (_gate)
        {
            if (MustAbort(me))
            {
                if (me.IsFinished)
                    return;
                throw new SimulationAbortedException();
            }
            if (!_runActive)
            {
                // A failure elsewhere ended the run while this thread was still executing: stop here.
                if (me.IsFinished)
                    return;
                me.SetState(SimThreadState.Runnable);
                if (!_runnable.Contains(me))
                    InsertRunnableLocked(me);
                next = null;
            }
            else
            {
                if (me.State == SimThreadState.Runnable && !_runnable.Contains(me))
                    InsertRunnableLocked(me);
                next = PickNextLocked(me);
                if (ReferenceEquals(next, me))
                {
                    me.SetState(SimThreadState.Running);
                    return;
                }
                if (next is null)
                    FinishRunLocked();
                else
                    next.SetState(SimThreadState.Running);
            }
        }
        if (next is not null)
        {
            Trace.Record(s_switchEvent, (ulong)me.Id, (ulong)next.Id);
            next.Baton.Release();
        }
        if (me.IsFinished)
            return;
        me.Baton.Wait();
        if (MustAbort(me))
            throw new SimulationAbortedException();
    }

    /// <summary>Chooses who runs next, advancing virtual time if nobody is runnable. Caller holds _gate.</summary>
    private SimThread? PickNextLocked(SimThread? me)
    {
        WakeDueSleepersLocked();
        if (_runnable.Count == 0)
        {
            if (!_sleepers.TryPeek(out _, out var first))
                return null;
            if (!AnyNonDaemonAliveLocked() && (_settleDeadline == 0 || first.Wake > _settleDeadline))
                return null;
            _now = Math.Max(_now, first.Wake);
            WakeDueSleepersLocked();
        }
        SimThread next;
        int count = _runnable.Count;
        int mine = me is null ? -1 : _runnable.IndexOf(me);
        if (count == 1)
        {
            next = _runnable[0];
        }
        else
        {
            // A choice point. Decision 0 keeps the current thread (or takes the lowest id); d > 0 takes the d-th other.
            int decision;
            if (Options.Schedule is { } script)
            {
                decision = script[_decisionLog.Count];
                if (decision >= count)
                    decision = 0;
            }
            else if (mine >= 0)
            {
                decision = _decisions.Chance(Options.SwitchProbability) ? 1 + _decisions.NextInt(count - 1) : 0;
            }
            else
            {
                decision = _decisions.NextInt(count);
            }
            _decisionLog.Add(decision);
            if (mine >= 0)
            {
                int pick = decision - 1;
                next = decision == 0 ? me! : _runnable[pick >= mine ? pick + 1 : pick];
            }
            else
            {
                next = _runnable[decision];
            }
        }
        _runnable.Remove(next);
        return next;
    }

    private bool SleeperDueLocked() => _sleepers.TryPeek(out _, out var p) && p.Wake <= _now;

    private void WakeDueSleepersLocked()
    {
        while (_sleepers.TryPeek(out var t, out var p) && p.Wake <= _now)
        {
            _sleepers.Dequeue();
            if (t.State == SimThreadState.Sleeping)
            {
                t.SetState(SimThreadState.Runnable);
                InsertRunnableLocked(t);
            }
        }
    }

    private void MakeRunnableLocked(SimThread t)
    {
        if (t.State != SimThreadState.Blocked)
            return;
        t.WaitReason = null;
        t.SetState(SimThreadState.Runnable);
        InsertRunnableLocked(t);
    }

    // The runnable list is kept sorted by thread id so that a decision's index names the same thread in every run.
    private void InsertRunnableLocked(SimThread t)
    {
        int i = _runnable.Count;
        while (i > 0 && _runnable[i - 1].Id > t.Id)
            i--;
        _runnable.Insert(i, t);
    }

    private bool AnyNonDaemonAliveLocked()
    {
        foreach (var t in _live)
        {
            if (!t.IsDaemon)
                return true;
        }
        return false;
    }

    private void FinishRunLocked()
    {
        if (AnyNonDaemonAliveLocked())
            _failure ??= new SimulationDeadlockException(DescribeDeadlockLocked());
        EndRunLocked();
    }

    // Ends the run. A host-carried thread still in the simulation (blocked, or never picked) is told to unwind, so
    // that the host returns to its caller; the other threads stay where they are until Dispose aborts them.
    private void EndRunLocked()
    {
        _runActive = false;
        if (_carried is { IsFinished: false } carried)
        {
            carried.AbortRequested = true;
            try
            {
                carried.Baton.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled: it observes the request when it takes the baton.
            }
        }
        _carried = null;
        _runDone.Set();
    }

    private string DescribeDeadlockLocked()
    {
        var sb = new StringBuilder();
        sb.Append("Simulation deadlock at t=").Append(_now).Append("ns (seed ").Append(Seed)
          .AppendLine("): no simulated thread can run, but these are still waiting:");
        foreach (var t in _live)
        {
            sb.Append("  T").Append(t.Id).Append(" '").Append(t.Name).Append("' ")
              .Append(t.IsDaemon ? "(daemon) " : "")
              .Append(t.State == SimThreadState.Blocked ? "blocked on " + t.WaitReason : t.State.ToString())
              .AppendLine();
        }
        sb.Append("Look for a lock taken twice, a lock-order inversion, or a completion nobody signals.");
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
        {
            try
            {
                t.Baton.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled: the thread will observe the abort when it wakes.
            }
        }
        foreach (var t in threads)
            t.WaitUnwound(TimeSpan.FromSeconds(10));
        if (disposing)
            _runDone.Dispose();
    }
}
