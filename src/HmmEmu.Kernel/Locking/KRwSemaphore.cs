using HmmEmu.Annotations;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Locking;

/// <summary>
/// A sleeping reader/writer lock (struct rw_semaphore), e.g. mmap_lock. Writer-preferring like the kernel's: once
/// a writer waits, new readers wait too, which is why taking the read side twice on one thread can deadlock (and
/// is reported as recursion).
/// </summary>
public sealed class KRwSemaphore
{
    private const long WriterBit = 1L << 62;
    private const long ReaderMask = 0xFFFF_FFFFL;

    private readonly HostKernel _kernel;
    private readonly SimWaitQueue _wait;
    private long _state;
    private int _waitingWriters;
    private TaskContext? _writer;

    /// <summary>Creates a reader/writer lock whose lock class is <paramref name="className"/>.</summary>
    public KRwSemaphore(HostKernel kernel, string className)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        Class = kernel.Lockdep.GetClass(className, LockKind.RwSemaphore);
        _wait = new SimWaitQueue(kernel.Scheduler, "rwsem " + className);
    }

    /// <summary>The lock class the checker files this lock under.</summary>
    public LockClass Class { get; }

    /// <summary>Whether anyone holds the lock (either side).</summary>
    public bool IsLocked => Volatile.Read(ref _state) != 0;

    /// <summary>Whether a writer holds the lock.</summary>
    public bool IsWriteLocked => (Volatile.Read(ref _state) & WriterBit) != 0;

    /// <summary>Whether the calling thread holds the lock (either side).</summary>
    public bool IsHeldByCurrentThread => TaskContext.For(_kernel).Holds(this);

    /// <summary>Whether the calling thread holds the write side.</summary>
    public bool IsWriteHeldByCurrentThread => ReferenceEquals(Volatile.Read(ref _writer), TaskContext.For(_kernel));

    /// <summary>Acquires the read side (down_read). May sleep.</summary>
    [MayBlock]
    [AcquiresLock]
    public void DownRead()
    {
        var me = TaskContext.For(_kernel);
        _kernel.Lockdep.MightSleep(me, $"down_read({Class.Name})");
        _kernel.Lockdep.Acquire(me, Class, this, shared: true, trylock: false);
        _kernel.Scheduler.Yield();
        if (!TryTakeRead())
            _wait.WaitUntil(this, static s => s.TryTakeRead());
    }

    /// <summary>Acquires the read side if no writer holds or waits for it (down_read_trylock).</summary>
    [NonBlocking]
    [AcquiresOnSuccess]
    public bool TryDownRead()
    {
        var me = TaskContext.For(_kernel);
        if (!TryTakeRead())
            return false;
        _kernel.Lockdep.Acquire(me, Class, this, shared: true, trylock: true);
        return true;
    }

    /// <summary>Releases the read side (up_read).</summary>
    [NonBlocking]
    [ReleasesLock]
    public void UpRead()
    {
        var me = TaskContext.For(_kernel);
        if ((Volatile.Read(ref _state) & ReaderMask) == 0)
            throw new KernelRuleViolationException($"up_read({Class.Name}) by {me.Name} without a matching down_read.");
        _kernel.Lockdep.Release(me, Class, this);
        if (Interlocked.Decrement(ref _state) == 0)
            _wait.WakeAll();
    }

    /// <summary>Acquires the write side (down_write). May sleep.</summary>
    [MayBlock]
    [AcquiresLock]
    public void DownWrite() => DownWriteNested(0);

    /// <summary>
    /// Acquires the write side of a second lock of the same class (down_write_nested), e.g. the child's mmap_lock
    /// while the parent's is held during fork. The subclass gives the inner lock its own place in the lock order.
    /// </summary>
    [MayBlock]
    [AcquiresLock]
    public void DownWriteNested(int subclass)
    {
        var me = TaskContext.For(_kernel);
        var cls = subclass == 0 ? Class : _kernel.Lockdep.GetClass($"{Class.Name}/{subclass}", LockKind.RwSemaphore);
        _kernel.Lockdep.MightSleep(me, $"down_write({Class.Name})");
        _kernel.Lockdep.Acquire(me, cls, this, shared: false, trylock: false);
        _kernel.Scheduler.Yield();
        if (!TryTakeWrite(me))
        {
            Interlocked.Increment(ref _waitingWriters);
            try
            {
                _wait.WaitUntil((this, me), static s => s.Item1.TryTakeWrite(s.me));
            }
            finally
            {
                if (Interlocked.Decrement(ref _waitingWriters) == 0)
                    _wait.WakeAll();
            }
        }
    }

    /// <summary>Acquires the write side if the lock is free (down_write_trylock).</summary>
    [NonBlocking]
    [AcquiresOnSuccess]
    public bool TryDownWrite()
    {
        var me = TaskContext.For(_kernel);
        if (!TryTakeWrite(me))
            return false;
        _kernel.Lockdep.Acquire(me, Class, this, shared: false, trylock: true);
        return true;
    }

    /// <summary>Releases the write side (up_write).</summary>
    [NonBlocking]
    [ReleasesLock]
    public void UpWrite()
    {
        var me = TaskContext.For(_kernel);
        if (!ReferenceEquals(Volatile.Read(ref _writer), me))
            throw new KernelRuleViolationException($"up_write({Class.Name}) by {me.Name}, which does not hold the write side.");
        _kernel.Lockdep.Release(me, Class, this);
        Volatile.Write(ref _writer, null);
        Interlocked.And(ref _state, ~WriterBit);
        _wait.WakeAll();
    }

    /// <summary>Turns a held write side into a read side without letting a writer in between (downgrade_write).</summary>
    public void DowngradeWrite()
    {
        var me = TaskContext.For(_kernel);
        if (!ReferenceEquals(Volatile.Read(ref _writer), me))
            throw new KernelRuleViolationException($"downgrade_write({Class.Name}) by {me.Name}, which does not hold the write side.");
        var held = me.Pop(this) ?? throw new KernelBugException("rwsem writer without a held-lock entry");
        me.Push(held with { Shared = true });
        Volatile.Write(ref _writer, null);
        Interlocked.Exchange(ref _state, 1);
        _wait.WakeAll();
    }

    /// <summary>Acquires the read side for the scope of a <c>using</c>. May sleep.</summary>
    [MayBlock]
    [AcquiresLock]
    public LockScope ScopedRead()
    {
        DownRead();
        return new LockScope(this, write: false);
    }

    /// <summary>Acquires the write side for the scope of a <c>using</c>. May sleep.</summary>
    [MayBlock]
    [AcquiresLock]
    public LockScope ScopedWrite()
    {
        DownWrite();
        return new LockScope(this, write: true);
    }

    /// <summary>Throws unless the calling thread holds either side.</summary>
    public void AssertHeld(string requiredBy) =>
        Lockdep.AssertHeld(TaskContext.For(_kernel), this, $"rwsem {Class}", requiredBy);

    /// <summary>Throws unless the calling thread holds the write side.</summary>
    public void AssertWriteHeld(string requiredBy)
    {
        var me = TaskContext.For(_kernel);
        if (!ReferenceEquals(Volatile.Read(ref _writer), me))
        {
            throw new KernelRuleViolationException(
                $"{requiredBy} requires the write side of {Class} held by the caller, but {me.Name} does not hold it. " +
                $"Take it with DownWrite before calling {requiredBy}.");
        }
    }

    internal bool TryTakeRead()
    {
        while (true)
        {
            long s = Volatile.Read(ref _state);
            if ((s & WriterBit) != 0 || Volatile.Read(ref _waitingWriters) > 0)
                return false;
            if (Interlocked.CompareExchange(ref _state, s + 1, s) == s)
                return true;
        }
    }

    private bool TryTakeWrite(TaskContext me)
    {
        if (Interlocked.CompareExchange(ref _state, WriterBit, 0) != 0)
            return false;
        Volatile.Write(ref _writer, me);
        return true;
    }

    /// <inheritdoc />
    public override string ToString() => $"KRwSemaphore{Class}";
}
