using HmmEmu.Simulation;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// The NIC's timer: a daemon simulated thread that watches every QP's ACK deadline and RNR wait. An RNR wait that has
/// passed releases the requester. An ACK deadline that has passed fires only when the link is quiet (nothing in
/// flight, nothing waiting in either port): a packet still on its way is not lost. In deterministic mode that is
/// exact virtual time; in threaded mode, where each thread keeps its own clock, the quiet check is what keeps a
/// busy link from timing out spuriously, and the timer blocks until the link reports itself quiet
/// (<see cref="RnicLink.OnQuiet"/>) instead of spinning. In deterministic mode it sleeps at most
/// <see cref="RnicModelOptions.TimerTickNs"/> at a time.
/// </summary>
internal sealed class RnicRetryTimer : IDisposable
{
    private readonly RnicModel _model;
    private readonly Scheduler _scheduler;
    private readonly SimWaitQueue _wake;
    private readonly List<RnicQp> _qps = [];
    private int _pending;
    private int _stopping;
    private int _waitingForQuiet;
    private readonly SimThread _thread;

    public RnicRetryTimer(RnicModel model, Scheduler scheduler)
    {
        _model = model;
        _scheduler = scheduler;
        _wake = new SimWaitQueue(scheduler, $"rnic{model.Address} timer idle");
        _thread = scheduler.Spawn($"rnic{model.Address} timer", Loop, SimThreadKind.Device, daemon: true);
    }

    /// <summary>A deadline was armed or changed: look again. Never sleeps.</summary>
    public void Wake()
    {
        if (Interlocked.Exchange(ref _pending, 1) == 0)
            _wake.WakeAll();
    }

    public void Dispose()
    {
        Volatile.Write(ref _stopping, 1);
        _wake.WakeAll();
        if (_thread.IsFinished)
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
            // The machine is gone; so is the timer.
        }
        catch (SimulationAbortedException)
        {
            // The scheduler unwound every thread.
        }
    }

    /// <summary>The link may have become quiet: if an ACK deadline waits for that, look again. Never sleeps.</summary>
    public void LinkQuiet()
    {
        if (Volatile.Read(ref _waitingForQuiet) != 0)
            Wake();
    }

    // Deterministic mode: sleep in virtual time to the next deadline (at most a tick), as long as any is armed.
    // Threaded mode, where each thread keeps its own clock and a sleep only charges time: spin in ticks only while an
    // RNR wait is pending (short); with only ACK deadlines armed, block until the link is quiet or a deadline changes,
    // then charge the time to the deadline and fire it. So a streaming QP costs the timer nothing.
    private void Loop()
    {
        bool threaded = _scheduler.Mode == SchedulerMode.Threaded;
        while (Volatile.Read(ref _stopping) == 0)
        {
            _wake.WaitUntil(this, static t => Volatile.Read(ref t._pending) != 0 || Volatile.Read(ref t._stopping) != 0);
            Volatile.Write(ref _pending, 0);
            while (Volatile.Read(ref _stopping) == 0 && Scan(out ulong next, out bool rnrWaiting))
            {
                ulong now = _scheduler.Clock.Now;
                ulong wait = next > now ? next - now : 1;
                if (threaded && !rnrWaiting)
                {
                    var link = _model.Link;
                    if (!Quiet(link))
                    {
                        // Wait for the quiet link (or a new deadline); re-check after announcing it, so no wake is lost.
                        Volatile.Write(ref _waitingForQuiet, 1);
                        if (!Quiet(link))
                            break;
                    }
                    Volatile.Write(ref _waitingForQuiet, 0);
                    _scheduler.Sleep(wait);
                    continue;
                }
                _scheduler.Sleep(Math.Min(wait, _model.Options.TimerTickNs));
            }
        }
    }

    // Nothing on the wire, in either port, or being built by this NIC's requester (which arms a deadline before the
    // packet reaches the link).
    private bool Quiet(RnicLink? link) => (link is null || link.IsQuiet) && !_model.Requester.IsActive;

    // Fires what is due; returns whether any deadline is still armed (next: the earliest; rnrWaiting: an RNR wait is).
    private bool Scan(out ulong next, out bool rnrWaiting)
    {
        next = ulong.MaxValue;
        rnrWaiting = false;
        ulong now = _scheduler.Clock.Now;
        bool armed = false;
        _model.CollectQps(_qps);
        var link = _model.Link;
        foreach (var qp in _qps)
        {
            bool releaseRnr = false, timeout = false;
            lock (qp.Sync)
            {
                if (qp.RnrUntil != 0)
                {
                    if (now >= qp.RnrUntil)
                    {
                        qp.RnrUntil = 0;
                        releaseRnr = true;
                    }
                    else
                    {
                        armed = true;
                        rnrWaiting = true;
                        next = Math.Min(next, qp.RnrUntil);
                    }
                }
                if (qp.AckDeadline != 0)
                {
                    armed = true;
                    if (now >= qp.AckDeadline && Quiet(link))
                        timeout = true;
                    else if (now >= qp.AckDeadline)
                        next = Math.Min(next, now + _model.Options.TimerTickNs);     // due, but packets are still moving
                    else
                        next = Math.Min(next, qp.AckDeadline);
                }
            }
            if (releaseRnr)
                _model.Requester.Kick(qp);
            if (timeout)
                _model.Completer.PostTimeout(qp, now);
        }
        _qps.Clear();
        return armed;
    }
}
