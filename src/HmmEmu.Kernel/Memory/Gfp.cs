namespace HmmEmu.Kernel.Memory;

/// <summary>
/// Allocation flags (gfp_t): whether an allocation may sleep and enter reclaim, may dip into reserves, and should
/// return zeroed memory. The lock checker treats a reclaim-capable allocation as "may take fs_reclaim and may
/// invalidate", wherever it is made.
/// </summary>
[Flags]
public enum Gfp : uint
{
    /// <summary>GFP_NOWAIT: never sleeps, never reclaims, no reserves. May fail.</summary>
    NoWait = 0,

    /// <summary>__GFP_DIRECT_RECLAIM: may sleep and run direct reclaim (which can invalidate device mappings).</summary>
    DirectReclaim = 1 << 0,

    /// <summary>__GFP_IO: reclaim may start I/O.</summary>
    Io = 1 << 1,

    /// <summary>__GFP_FS: reclaim may call into file systems.</summary>
    Fs = 1 << 2,

    /// <summary>__GFP_HIGH: may use the emergency reserve (part of GFP_ATOMIC).</summary>
    HighPriority = 1 << 3,

    /// <summary>__GFP_ZERO: return zero-filled memory.</summary>
    Zero = 1 << 4,

    /// <summary>__GFP_NOWARN: do not warn on failure.</summary>
    NoWarn = 1 << 5,   // the kernel allocation flag, not a compiler-warning suppression: callers handle the failure

    /// <summary>GFP_KERNEL: the normal, sleeping, reclaim-capable allocation.</summary>
    Kernel = DirectReclaim | Io | Fs,

    /// <summary>GFP_ATOMIC: never sleeps; may use reserves. For atomic context and for use under invalidate-callback locks.</summary>
    Atomic = HighPriority,

    /// <summary>GFP_NOFS: may reclaim, but not through file systems.</summary>
    NoFs = DirectReclaim | Io,

    /// <summary>GFP_HIGHUSER_MOVABLE: user pages (page faults).</summary>
    HighUser = Kernel,
}
