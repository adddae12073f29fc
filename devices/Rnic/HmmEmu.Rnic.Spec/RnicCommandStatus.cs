namespace HmmEmu.Rnic;

/// <summary>Command completion statuses (byte 0x01 of a <see cref="RnicCommandCompletion"/>); the errno a driver returns is in the docs.</summary>
public enum RnicCommandStatus : byte
{
    /// <summary>The command did what it asked (errno 0).</summary>
    Ok = 0,

    /// <summary>Unknown opcode, unknown flag or a non-zero reserved field (EINVAL).</summary>
    BadOpcode = 1,

    /// <summary>An argument is out of range: a size not a power of two, a misaligned address, a zero length (EINVAL).</summary>
    BadArgument = 2,

    /// <summary>The device's table for the object is full (ENOMEM).</summary>
    NoResources = 3,

    /// <summary>A PD, CQ, QP or key names no live object (or a key's key byte is stale) (EINVAL).</summary>
    BadObject = 4,

    /// <summary>The object is in a state that forbids the command, e.g. INVALIDATE_MTT on a pinned MR (EINVAL).</summary>
    BadState = 5,

    /// <summary>MODIFY_QP asked for a transition the state machine does not have (EINVAL; out0: current state).</summary>
    BadTransition = 6,

    /// <summary>MODIFY_QP lacks a required attribute or carries one the transition does not allow (EINVAL; out0: missing mask, out1: not-allowed mask).</summary>
    BadAttributes = 7,

    /// <summary>The object is still referenced (a PD with MRs or QPs, a CQ with QPs) (EBUSY).</summary>
    Busy = 8,

    /// <summary>Memory the command names could not be read or written (an MTT, an attribute block) (EFAULT).</summary>
    MemoryError = 9,

    /// <summary>RESUME for a QP side that has no pending page fault (EINVAL).</summary>
    NotPending = 10,

    /// <summary>Access flags that cannot be combined: remote write or atomic without local write, OnDemand on REG_MR,
    /// no OnDemand on REG_MR_ODP (EINVAL).</summary>
    BadAccess = 11,
}
