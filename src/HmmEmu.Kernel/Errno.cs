namespace HmmEmu.Kernel;

/// <summary>
/// Kernel error codes, with the kernel's names and numbers. Kernel API calls return them for expected outcomes
/// (the kernel returns them negated); <see cref="Ok"/> is success.
/// </summary>
public enum Errno
{
    /// <summary>Success.</summary>
    Ok = 0,

    /// <summary>Operation not permitted (e.g. a write was requested on a read-only mapping).</summary>
    EPERM = 1,

    /// <summary>No such entry (e.g. a mirror page that is not in the device page table).</summary>
    ENOENT = 2,

    /// <summary>Interrupted.</summary>
    EINTR = 4,

    /// <summary>I/O error.</summary>
    EIO = 5,

    /// <summary>Bad file descriptor.</summary>
    EBADF = 9,

    /// <summary>Try again (e.g. a non-blockable invalidation was refused).</summary>
    EAGAIN = 11,

    /// <summary>Out of memory, or (for mprotect/madvise) the range contains unmapped pages.</summary>
    ENOMEM = 12,

    /// <summary>Permission denied.</summary>
    EACCES = 13,

    /// <summary>Bad address: no mapping, or access not allowed.</summary>
    EFAULT = 14,

    /// <summary>Busy: the range was invalidated while being faulted; retry from read_begin.</summary>
    EBUSY = 16,

    /// <summary>Already exists.</summary>
    EEXIST = 17,

    /// <summary>No such device.</summary>
    ENODEV = 19,

    /// <summary>Invalid argument.</summary>
    EINVAL = 22,

    /// <summary>No space left.</summary>
    ENOSPC = 28,

    /// <summary>Value too large (e.g. an interval notifier range that wraps around).</summary>
    EOVERFLOW = 75,

    /// <summary>Operation not supported.</summary>
    EOPNOTSUPP = 95,
}
