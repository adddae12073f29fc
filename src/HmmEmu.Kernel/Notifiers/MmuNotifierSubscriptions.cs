using HmmEmu.Kernel.Collections;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Notifiers;

/// <summary>
/// The per-address-space notifier state (struct mmu_notifier_subscriptions): the interval tree of notifiers, the
/// address space's invalidation sequence (even when idle, odd while an invalidation that touched a notifier is
/// running), the count of running invalidations, the list of inserts and removes deferred until they end, and the
/// wait queue on which <c>ReadBegin</c> and <c>Remove</c> wait for them.
/// </summary>
internal sealed class MmuNotifierSubscriptions
{
    private static readonly TraceEventType s_invStart = new("mmu_notifier", "invalidate_start", "mm<<8|event", "start", "end");
    private static readonly TraceEventType s_invEnd = new("mmu_notifier", "invalidate_end", "mm", "seq");
    private static readonly TraceEventType s_callback = new("mmu_notifier", "callback", "notifier_start", "seq", "ok");
    private static readonly TraceSpanType s_callbackSpan = new("mmu_notifier", "invalidate", crossThread: false, "notifier_start", "range_start", "event");

    // KernelMutant.NarrowNotifierSeq: the sequence wraps at 3 bits.
    private const ulong NarrowSeqMask = 7;

    private readonly Mm _mm;
    private readonly HostKernel _kernel;
    private readonly Lock _lock = new();     // subscriptions->lock: guards every field below
    private readonly IntervalTree<MmuIntervalNotifier> _itree = new();
    private readonly List<MmuIntervalNotifier> _deferred = [];
    private readonly SimWaitQueue _wq;
    private ulong _invalidateSeq = 2;
    private long _activeRanges;
    private long _nextOrder;

    public MmuNotifierSubscriptions(Mm mm)
    {
        _mm = mm;
        _kernel = mm.Kernel;
        _wq = new SimWaitQueue(_kernel.Scheduler, $"mm{mm.Id}.notifier_wq");
    }

    public ulong InvalidateSeq => Volatile.Read(ref _invalidateSeq);

    public long ActiveRanges
    {
        get
        {
            lock (_lock)
                return _activeRanges;
        }
    }

    public int NotifierCount => _itree.Count;

    public void Insert(MmuIntervalNotifier sub)
    {
        lock (_lock)
        {
            sub.Order = _nextOrder++;
            if (_activeRanges > 0)
            {
                if ((_invalidateSeq & 1) != 0)
                {
                    _deferred.Add(sub);
                    sub.State = NotifierState.PendingInsert;
                }
                else
                {
                    _invalidateSeq |= 1;
                    _itree.Insert(sub, sub.Start, sub.Last, sub.Order);
                    sub.State = NotifierState.Inserted;
                }
                sub.SetSeqRaw(_invalidateSeq);
            }
            else
            {
                if ((_invalidateSeq & 1) != 0)
                    throw new KernelBugException($"mm {_mm.Id}: invalidation sequence {_invalidateSeq} is odd with no invalidation running.");
                if ((_kernel.Options.Mutants & KernelMutant.NarrowNotifierSeq) != 0)
                    sub.SetSeqRaw((_invalidateSeq - 1) & NarrowSeqMask);
                else
                    sub.SetSeqRaw(_invalidateSeq - 1);
                _itree.Insert(sub, sub.Start, sub.Last, sub.Order);
                sub.State = NotifierState.Inserted;
            }
        }
    }

    /// <summary>Unlinks <paramref name="sub"/> now, or defers it; returns the sequence to wait out (0: none).</summary>
    public ulong Remove(MmuIntervalNotifier sub)
    {
        lock (_lock)
        {
            if ((_invalidateSeq & 1) != 0)
            {
                if (sub.State == NotifierState.PendingInsert)
                {
                    _deferred.Remove(sub);
                    sub.State = NotifierState.Removed;
                    return 0;
                }
                _deferred.Add(sub);
                sub.State = NotifierState.PendingRemove;
                return _invalidateSeq;
            }
            _itree.Remove(sub);
            sub.State = NotifierState.Removed;
            return 0;
        }
    }

    public void WaitSeqReleased(ulong seq) =>
        _wq.WaitUntil((this, seq), static s => Volatile.Read(ref s.Item1._invalidateSeq) != s.seq);

    public ulong ReadBegin(MmuIntervalNotifier sub)
    {
        var task = TaskContext.For(_kernel);
        _kernel.Lockdep.MightSleep(task, "mmu_interval_read_begin");
        ulong seq;
        bool invalidating;
        lock (_lock)
        {
            seq = sub.Seq;
            invalidating = seq == _invalidateSeq;
        }
        // The read side must never be entered holding a lock that an invalidate callback takes: teach lockdep so.
        _kernel.Lockdep.MapTouch(task, _kernel.Lockdep.InvalidateRangeStart);
        if (invalidating)
            _wq.WaitUntil((this, seq), static s => Volatile.Read(ref s.Item1._invalidateSeq) != s.seq);
        return seq;
    }

    /// <summary>
    /// Runs the callbacks of every notifier overlapping <paramref name="range"/> (mn_itree_invalidate). Returns EAGAIN
    /// if a callback refused a non-blockable range; the invalidation is then already ended and must not be ended again.
    /// </summary>
    public Errno Invalidate(in MmuNotifierRange range)
    {
        var task = TaskContext.For(_kernel);
        var snap = StartRange(range.Start, range.End - 1, out int idx, out ulong curSeq);
        _kernel.Trace.Record(s_invStart, ((ulong)_mm.Id << 8) | (ulong)range.Event, range.Start, range.End);
        try
        {
            for (; idx >= 0; idx = snap.Next(idx, range.Start, range.End - 1))
            {
                var sub = snap.Entries[idx].Item;
                bool ok = CallInvalidate(task, sub, range, curSeq);
                if (ok)
                    continue;
                if (range.Blockable)
                {
                    _kernel.Warn($"The invalidate callback of {sub} returned false for a blockable range {range}. " +
                        "Only a non-blockable range may be refused; a blockable one must be waited for.");
                    continue;
                }
                InvalidateEnd();
                return Errno.EAGAIN;
            }
            return Errno.Ok;
        }
        catch
        {
            // A callback threw (a driver bug or a rule violation it made): end this invalidation so the sequence
            // can become even again and nobody waits for it forever, then let the failure surface.
            InvalidateEnd();
            throw;
        }
    }

    /// <summary>Sends MMU_NOTIFY_RELEASE for the whole address space (mn_itree_release).</summary>
    public void Release()
    {
        var range = new MmuNotifierRange(_mm, NotifierEvent.Release, 0, ulong.MaxValue);
        var task = TaskContext.For(_kernel);
        var snap = StartRange(0, ulong.MaxValue, out int idx, out ulong curSeq);
        for (; idx >= 0; idx = snap.Next(idx, 0, ulong.MaxValue))
        {
            var sub = snap.Entries[idx].Item;
            if (!CallInvalidate(task, sub, range, curSeq))
                _kernel.Warn($"The invalidate callback of {sub} returned false for MMU_NOTIFY_RELEASE, which must always succeed.");
        }
        InvalidateEnd();
    }

    // mn_itree_inv_start_range: counts the invalidation as running, makes the sequence odd if a notifier overlaps
    // [start, last], and returns the tree to iterate (removals are deferred while it runs, so it stays valid).
    private IntervalTree<MmuIntervalNotifier>.Snapshot StartRange(ulong start, ulong last, out int first, out ulong curSeq)
    {
        lock (_lock)
        {
            _activeRanges++;
            var snap = _itree.Current;
            first = snap.First(start, last);
            if (first >= 0)
                _invalidateSeq |= 1;
            curSeq = _invalidateSeq;
            return snap;
        }
    }

    /// <summary>mn_itree_inv_end: the last running invalidation makes the sequence even and applies deferred changes.</summary>
    public void InvalidateEnd()
    {
        ulong seq;
        lock (_lock)
        {
            if (--_activeRanges > 0 || (_invalidateSeq & 1) == 0)
                return;
            _invalidateSeq++;
            if ((_kernel.Options.Mutants & KernelMutant.NarrowNotifierSeq) != 0)
                _invalidateSeq &= NarrowSeqMask;
            seq = _invalidateSeq;
            foreach (var sub in _deferred)
            {
                if (sub.State == NotifierState.PendingInsert)
                {
                    _itree.Insert(sub, sub.Start, sub.Last, sub.Order);
                    sub.State = NotifierState.Inserted;
                }
                else
                {
                    _itree.Remove(sub);
                    sub.State = NotifierState.Removed;
                }
            }
            _deferred.Clear();
        }
        _kernel.Trace.Record(s_invEnd, (ulong)_mm.Id, seq);
        _wq.WakeAll();
    }

    private bool CallInvalidate(TaskContext task, MmuIntervalNotifier sub, in MmuNotifierRange range, ulong curSeq)
    {
        int savedBase = task.CallbackHeldBase;
        task.CallbackHeldBase = task.HeldCount;
        task.NotifierCallbackDepth++;
        if (!range.Blockable)
            task.NonBlockDepth++;
        bool ok;
        var span = _kernel.Trace.Begin(s_callbackSpan, sub.Start, range.Start, (ulong)range.Event);
        try
        {
            ok = sub.Ops.Invalidate(sub, range, curSeq);
        }
        finally
        {
            if (!range.Blockable)
                task.NonBlockDepth--;
            task.NotifierCallbackDepth--;
            task.CallbackHeldBase = savedBase;
        }
        _kernel.Scheduler.Charge(_kernel.Timing.InvalidationNs);
        _kernel.Trace.Record(s_callback, sub.Start, curSeq, ok ? 1UL : 0UL);
        span.End(ok ? 1UL : 0UL);
        if (ok && sub.Seq != curSeq && range.Event is not (NotifierEvent.Migrate or NotifierEvent.Exclusive))
        {
            _kernel.Warn($"The invalidate callback of {sub} returned true for {range} without calling SetSeq({curSeq}). " +
                "A reader that began before this invalidation would then pass ReadRetry and commit a stale mapping. " +
                "Call notifier.SetSeq(curSeq) under the driver lock in every callback that returns true.");
        }
        return ok;
    }
}
