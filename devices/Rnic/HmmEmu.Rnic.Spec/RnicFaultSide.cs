namespace HmmEmu.Rnic;

/// <summary>Which engine of a QP took a page fault (byte 0x01 of an <see cref="RnicEqe"/>, arg1 of RESUME).</summary>
public enum RnicFaultSide : byte
{
    /// <summary>Not a page fault.</summary>
    None = 0,

    /// <summary>The requester (or its completer placing READ/atomic results) missed on a local SGE's lkey.</summary>
    Requester = 1,

    /// <summary>The responder missed on an incoming request's rkey, or on a receive WQE's lkey for a SEND.</summary>
    Responder = 2,
}
