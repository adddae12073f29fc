using HmmEmu.Annotations;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Locking;

/// <summary>
/// A sleeping mutual-exclusion lock (struct mutex). Acquiring may sleep, so it is forbidden in atomic, interrupt
/// and non-blockable-invalidation context; the lock checker learns its order against every other lock.
/// </summary>
public sealed class KMutex
{
    private readonly HostKernel _kernel;
    private readonly SimWaitQueue _wait;
    private TaskContext? _owner;

    /// <summary>Creates a mutex whose lock class is <paramref name="className"/> (shared by all mutexes of that name).</summary>
    public KMutex(HostKernel kernel, string className)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        Class = kernel.Lockdep.GetClass(className, LockKind.Mutex);
        _wait = new SimWaitQueue(kernel.Scheduler, "mutex " + className);
    }

    /// <summary>The lock class the checker files this mutex under.</summary>
    public LockClass Class { get; }

    /// <summary>Whether some thread holds the mutex (a snapshot; only meaningful for assertions).</summary>
    public bool IsLocked => Volatile.Read(ref _owner) is not null;

    /// <summary>Whether the calling thread holds the mutex.</summary>
    public bool IsHeldByCurrentThread => ReferenceEquals(Volatile.Read(ref _owner), TaskContext.For(_kernel));

    /// <summary>Acquires the mutex, sleeping while another thread holds it. May sleep.</summary>
    [MayBlock]
    [AcquiresLock]
    public void Lock()
    {
        var me = TaskContext.For(_kernel);
        _kernel.Lockdep.MightSleep(me, $"mutex_lock({Class.Name})");
        _kernel.Lockdep.Acquire(me, Class, this, shared: false, trylock: false);
        _kernel.Scheduler.Yield();
        if (Interlocked.CompareExchange(ref _owner, me, null) is not null)
            _wait.WaitUntil((this, me), static s => Interlocked.CompareExchange(ref s.Item1._owner, s.me, null) is null);
    }

    /// <summary>Acquires the mutex if it is free; never sleeps. Returns whether it was acquired.</summary>
    [NonBlocking]
    [AcquiresOnSuccess]
    public bool TryLock()
    {
        var me = TaskContext.For(_kernel);
        _kernel.Scheduler.Yield();
        if (Interlocked.CompareExchange(ref _owner, me, null) is not null)
            return false;
        _kernel.Lockdep.Acquire(me, Class, this, shared: false, trylock: true);
        return true;
    }

    /// <summary>Releases the mutex. Must be called by the thread that holds it.</summary>
    [NonBlocking]
    [ReleasesLock]
    public void Unlock()
    {
        var me = TaskContext.For(_kernel);
        if (!ReferenceEquals(Volatile.Read(ref _owner), me))
        {
            throw new KernelRuleViolationException(
                $"mutex_unlock({Class.Name}) called by {me.Name}, which does not hold it. A mutex is released by the thread that locked it.");
        }
        _kernel.Lockdep.Release(me, Class, this);
        Volatile.Write(ref _owner, null);
        _wait.WakeAll();
    }

    /// <summary>Acquires the mutex for the scope of a <c>using</c>. May sleep.</summary>
    [MayBlock]
    [AcquiresLock]
    public LockScope Scoped()
    {
        Lock();
        return new LockScope(this);
    }

    /// <summary>lockdep_assert_held(): throws unless the calling thread holds the mutex.</summary>
    public void AssertHeld(string requiredBy) =>
        Lockdep.AssertHeld(TaskContext.For(_kernel), this, $"mutex {Class}", requiredBy);

    /// <inheritdoc />
    public override string ToString() => $"KMutex{Class}";
}
