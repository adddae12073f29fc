namespace HmmEmu.Kernel.Locking;

/// <summary>The kind of a lock class, which decides the context rules that apply to it.</summary>
public enum LockKind
{
    /// <summary>A sleeping mutual-exclusion lock (<see cref="KMutex"/>).</summary>
    Mutex,

    /// <summary>A spinning lock (<see cref="KSpinLock"/>): holding it makes the context atomic.</summary>
    SpinLock,

    /// <summary>A sleeping reader/writer lock (<see cref="KRwSemaphore"/>).</summary>
    RwSemaphore,

    /// <summary>
    /// A pseudo-lock that excludes nobody but records order (lockdep's lock_map): "inside reclaim", "inside an
    /// invalidation", "flushing a work queue".
    /// </summary>
    Map,
}
