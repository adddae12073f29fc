using HmmEmu.Annotations;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Locking;

/// <summary>
/// A spinning lock (spinlock_t). Holding it makes the context atomic: sleeping, blocking allocation and sleeping
/// locks are reported by the checker. Use <see cref="LockIrqSave"/> when the lock is also taken from an interrupt
/// handler.
/// </summary>
/// <remarks>
/// In the simulation a contended spinlock blocks its waiter rather than burning a CPU; the atomic-context rules
/// are what matter.
/// </remarks>
public sealed class KSpinLock
{
    private readonly HostKernel _kernel;
    private readonly SimWaitQueue _wait;
    private TaskContext? _owner;

    /// <summary>Creates a spinlock whose lock class is <paramref name="className"/>.</summary>
    public KSpinLock(HostKernel kernel, string className)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        Class = kernel.Lockdep.GetClass(className, LockKind.SpinLock);
        _wait = new SimWaitQueue(kernel.Scheduler, "spinlock " + className);
    }

    /// <summary>The lock class the checker files this lock under.</summary>
    public LockClass Class { get; }

    /// <summary>Whether some thread holds the lock.</summary>
    public bool IsLocked => Volatile.Read(ref _owner) is not null;

    /// <summary>Whether the calling thread holds the lock.</summary>
    public bool IsHeldByCurrentThread => ReferenceEquals(Volatile.Read(ref _owner), TaskContext.For(_kernel));

    /// <summary>Acquires the lock (spin_lock). Never sleeps; the caller is atomic until <see cref="Unlock"/>.</summary>
    [NonBlocking]
    [AcquiresLock]
    public void Lock()
    {
        var me = TaskContext.For(_kernel);
        _kernel.Lockdep.Acquire(me, Class, this, shared: false, trylock: false);
        _kernel.Scheduler.Yield();
        Take(me);
        me.AtomicDepth++;
    }

    /// <summary>Acquires the lock with interrupts disabled (spin_lock_irqsave).</summary>
    [NonBlocking]
    [AcquiresLock]
    public void LockIrqSave()
    {
        var me = TaskContext.For(_kernel);
        me.IrqsOffDepth++;
        try
        {
            _kernel.Lockdep.Acquire(me, Class, this, shared: false, trylock: false);
        }
        catch
        {
            me.IrqsOffDepth--;
            throw;
        }
        Take(me);
        me.AtomicDepth++;
    }

    /// <summary>Acquires the lock if it is free (spin_trylock).</summary>
    [NonBlocking]
    [AcquiresOnSuccess]
    public bool TryLock()
    {
        var me = TaskContext.For(_kernel);
        if (Interlocked.CompareExchange(ref _owner, me, null) is not null)
            return false;
        _kernel.Lockdep.Acquire(me, Class, this, shared: false, trylock: true);
        me.AtomicDepth++;
        return true;
    }

    /// <summary>Releases the lock (spin_unlock).</summary>
    [NonBlocking]
    [ReleasesLock]
    public void Unlock()
    {
        var me = Release();
        me.AtomicDepth--;
    }

    /// <summary>Releases the lock and restores interrupts (spin_unlock_irqrestore).</summary>
    [NonBlocking]
    [ReleasesLock]
    public void UnlockIrqRestore()
    {
        var me = Release();
        me.AtomicDepth--;
        me.IrqsOffDepth--;
    }

    /// <summary>Acquires the lock for the scope of a <c>using</c>.</summary>
    [NonBlocking]
    [AcquiresLock]
    public LockScope Scoped()
    {
        Lock();
        return new LockScope(this, irqSave: false);
    }

    /// <summary>Acquires the lock with interrupts disabled for the scope of a <c>using</c>.</summary>
    [NonBlocking]
    [AcquiresLock]
    public LockScope ScopedIrqSave()
    {
        LockIrqSave();
        return new LockScope(this, irqSave: true);
    }

    /// <summary>lockdep_assert_held(): throws unless the calling thread holds the lock.</summary>
    public void AssertHeld(string requiredBy) =>
        Lockdep.AssertHeld(TaskContext.For(_kernel), this, $"spinlock {Class}", requiredBy);

    private void Take(TaskContext me)
    {
        if (Interlocked.CompareExchange(ref _owner, me, null) is not null)
            _wait.WaitUntil((this, me), static s => Interlocked.CompareExchange(ref s.Item1._owner, s.me, null) is null);
    }

    private TaskContext Release()
    {
        var me = TaskContext.For(_kernel);
        if (!ReferenceEquals(Volatile.Read(ref _owner), me))
        {
            throw new KernelRuleViolationException(
                $"spin_unlock({Class.Name}) called by {me.Name}, which does not hold it.");
        }
        _kernel.Lockdep.Release(me, Class, this);
        Volatile.Write(ref _owner, null);
        _wait.WakeAll();
        return me;
    }

    /// <inheritdoc />
    public override string ToString() => $"KSpinLock{Class}";
}
