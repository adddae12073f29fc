using HmmEmu.Annotations;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Notifiers;

/// <summary>
/// An mmu interval notifier (struct mmu_interval_notifier): a driver's subscription to invalidations of one
/// virtual range of one address space, and the sequence count with which the driver detects that a mapping it
/// is about to commit went stale.
/// </summary>
/// <remarks>
/// The protocol: <c>seq = ReadBegin()</c>; fault or snapshot the CPU page table (<see cref="Mirroring.Hmm.RangeFault"/>);
/// take the driver lock that the invalidate callback also takes; if <c>ReadRetry(seq)</c> drop the lock and start
/// again; otherwise commit the device mappings and drop the lock. The callback takes the same lock, calls
/// <see cref="SetSeq"/> and zaps the device mappings.
/// </remarks>
public sealed class MmuIntervalNotifier
{
    private static readonly TraceEventType s_readRetry = new("mmu_notifier", "read_retry", "notifier_start", "seq");

    private ulong _seq;
    private object?[] _setSeqLocks = [];

    /// <summary>Creates an unregistered notifier with the driver's callbacks.</summary>
    public MmuIntervalNotifier(IMmuIntervalNotifierOps ops)
    {
        ArgumentNullException.ThrowIfNull(ops);
        Ops = ops;
    }

    /// <summary>The driver's callbacks.</summary>
    public IMmuIntervalNotifierOps Ops { get; }

    /// <summary>The address space watched, once inserted.</summary>
    public Mm? Mm { get; private set; }

    /// <summary>First address watched.</summary>
    public ulong Start { get; private set; }

    /// <summary>Last address watched (inclusive).</summary>
    public ulong Last { get; private set; }

    /// <summary>Where the notifier is in its life.</summary>
    public NotifierState State { get; internal set; }

    internal long Order { get; set; }

    /// <summary>The notifier's current sequence value (odd; equal to the mm's while an invalidation involving it runs).</summary>
    public ulong Seq => Volatile.Read(ref _seq);

    /// <summary>
    /// mmu_interval_notifier_insert: starts watching [<paramref name="start"/>, <paramref name="start"/> +
    /// <paramref name="length"/>) of <paramref name="mm"/>. Returns EOVERFLOW for an empty or wrapping range and EINVAL
    /// for an address space that has exited. Safe while invalidations run (the insertion is deferred). May sleep.
    /// </summary>
    [MayBlock]
    public Errno Insert(Mm mm, ulong start, ulong length)
    {
        ArgumentNullException.ThrowIfNull(mm);
        if (State != NotifierState.Unregistered)
        {
            throw new InvalidOperationException(
                $"mmu_interval_notifier_insert on a notifier that is {State}. A notifier is inserted once; create a new one to watch another range.");
        }
        mm.Kernel.MightSleep("mmu_interval_notifier_insert");
        if (length == 0 || start + (length - 1) < start)
            return Errno.EOVERFLOW;
        if (mm.Users <= 0)
        {
            mm.Kernel.Warn($"mmu_interval_notifier_insert on mm {mm.Id} whose users count is {mm.Users}: hold a reference (MmGetNotZero) while registering.");
            return Errno.EINVAL;
        }
        Mm = mm;
        Start = start;
        Last = start + (length - 1);
        mm.MmGrab();
        mm.Subscriptions.Insert(this);
        return Errno.Ok;
    }

    /// <summary>
    /// mmu_interval_notifier_remove: stops watching and waits until no callback for this notifier can still be
    /// running. May sleep; must not be called from an invalidate callback (it would wait for itself).
    /// </summary>
    [MayInvalidate]
    public void Remove()
    {
        var mm = Mm;
        if (mm is null || State == NotifierState.Unregistered)
            throw new InvalidOperationException("mmu_interval_notifier_remove on a notifier that was never inserted. Call Insert first.");
        var kernel = mm.Kernel;
        var task = TaskContext.For(kernel);
        if (task.NotifierCallbackDepth > 0)
        {
            throw new KernelRuleViolationException(
                $"mmu_interval_notifier_remove called from inside an invalidate callback on {task.Name}. Remove waits for " +
                "running callbacks to finish, so from a callback it waits for itself. Defer the removal to a work queue " +
                "(as drivers do on MMU_NOTIFY_RELEASE/UNMAP) or remove when the file is closed.");
        }
        if (State is NotifierState.Removed or NotifierState.PendingRemove)
        {
            throw new InvalidOperationException(
                $"mmu_interval_notifier_remove called twice on the notifier for [0x{Start:x}, 0x{Last:x}] (state {State}). Remove it exactly once.");
        }
        kernel.MightSleep("mmu_interval_notifier_remove");
        var subs = mm.Subscriptions;
        ulong waitSeq = subs.Remove(this);
        kernel.Lockdep.MapTouch(task, kernel.Lockdep.InvalidateRangeStart);
        // KernelMutant.RemoveSkipsCallbackWait: returns while a callback of this notifier may still be running.
        if (waitSeq != 0 && (kernel.Options.Mutants & KernelMutant.RemoveSkipsCallbackWait) == 0)
            subs.WaitSeqReleased(waitSeq);
        mm.MmDrop();
    }

    /// <summary>
    /// mmu_interval_read_begin: starts a read-side critical section and returns the sequence to pass to
    /// <see cref="ReadRetry"/>. If an invalidation involving this notifier is running, waits for it to finish. May sleep.
    /// </summary>
    [MayInvalidate]
    public ulong ReadBegin()
    {
        var mm = RequireInserted("mmu_interval_read_begin");
        return mm.Subscriptions.ReadBegin(this);
    }

    /// <summary>
    /// mmu_interval_read_retry: whether an invalidation ran since <paramref name="seq"/> was read, so that what was
    /// read must not be committed (a collision is traced as mmu_notifier.read_retry with the notifier's start and its
    /// current sequence). Caller holds the driver lock that the invalidate callback takes around
    /// <see cref="SetSeq"/>; the lock checker verifies it once a callback has shown which lock that is.
    /// </summary>
    [NonBlocking]
    public bool ReadRetry(ulong seq)
    {
        var mm = RequireInserted("mmu_interval_read_retry");
        var locks = Volatile.Read(ref _setSeqLocks);
        if (locks.Length > 0 && mm.Kernel.Lockdep.Enabled)
        {
            var task = TaskContext.For(mm.Kernel);
            bool holdsOne = false;
            foreach (var l in locks)
                holdsOne |= l is not null && task.Holds(l);
            if (!holdsOne)
            {
                throw new KernelRuleViolationException(
                    $"mmu_interval_read_retry called by {task.Name} without holding the lock the invalidate callback holds " +
                    $"while calling mmu_interval_set_seq ({string.Join(", ", locks)}). Without it an invalidation can run " +
                    "between the check and the commit, and the device keeps a stale mapping. Take that lock, call " +
                    "ReadRetry, commit, then unlock.");
            }
        }
        ulong current = Volatile.Read(ref _seq);
        if (current == seq)
            return false;
        mm.Kernel.Trace.Record(s_readRetry, Start, current);
        return true;
    }

    /// <summary>
    /// mmu_interval_check_retry: a lock-free early test of whether <paramref name="seq"/> is already stale. Only an
    /// optimisation: a false answer must still be confirmed with <see cref="ReadRetry"/> under the driver lock.
    /// </summary>
    [NonBlocking]
    public bool CheckRetry(ulong seq) => Volatile.Read(ref _seq) != seq;

    /// <summary>
    /// mmu_interval_set_seq: called from the invalidate callback, under the driver lock, with the callback's
    /// <c>curSeq</c>, so that a concurrent reader's <see cref="ReadRetry"/> fails.
    /// </summary>
    [NonBlocking]
    public void SetSeq(ulong curSeq)
    {
        var mm = RequireInserted("mmu_interval_set_seq");
        var task = TaskContext.For(mm.Kernel);
        if (task.NotifierCallbackDepth == 0)
        {
            throw new KernelRuleViolationException(
                $"mmu_interval_set_seq called by {task.Name} outside an invalidate callback. Only the callback may publish " +
                "the sequence it was given; a reader uses ReadBegin/ReadRetry.");
        }
        if (task.HeldCount > task.CallbackHeldBase)
        {
            var held = task.Held[task.CallbackHeldBase..];
            var locks = new List<object?>();
            foreach (var h in held)
            {
                if (!h.Shared && h.Instance is not LockClass)
                    locks.Add(h.Instance);
            }
            if (locks.Count > 0)
                Volatile.Write(ref _setSeqLocks, [.. locks]);
        }
        Volatile.Write(ref _seq, curSeq);
    }

    internal void SetSeqRaw(ulong seq) => Volatile.Write(ref _seq, seq);

    internal void Place(ulong start, ulong last) => (Start, Last) = (start, last);

    private Mm RequireInserted(string what) =>
        Mm ?? throw new InvalidOperationException($"{what} on a notifier that was never inserted. Call Insert first.");

    /// <inheritdoc />
    public override string ToString() => $"interval notifier [0x{Start:x}, 0x{Last:x}] ({State})";
}
