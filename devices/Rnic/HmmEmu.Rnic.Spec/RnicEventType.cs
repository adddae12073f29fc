namespace HmmEmu.Rnic;

/// <summary>Event-queue entry types (byte 0x00 of an <see cref="RnicEqe"/>).</summary>
public enum RnicEventType : byte
{
    /// <summary>Not an event (a zeroed slot).</summary>
    None = 0,

    /// <summary>An armed CQ received a matching completion (object: CQN); the arm is spent (INT_STATUS.COMPLETION).</summary>
    Completion = 1,

    /// <summary>An ODP translation missed (object: QPN; side, access, key, address, length; WQE index for the requester); the QP side pauses until RESUME.</summary>
    PageFault = 2,

    /// <summary>The QP went to ERR for a reason not covered below, e.g. a malformed WQE or a bad doorbell index (object: QPN; status: the cause).</summary>
    QpFatal = 3,

    /// <summary>The QP's responder received an invalid request and went to ERR (object: QPN).</summary>
    QpReqErr = 4,

    /// <summary>The QP's responder hit a remote access violation (bad rkey, bounds, rights, failed ODP fault) and went to ERR (object: QPN).</summary>
    QpAccessErr = 5,

    /// <summary>A CQ overran (a completion found the ring full) and stopped (object: CQN).</summary>
    CqErr = 6,

    /// <summary>The port became active (object: port number).</summary>
    PortActive = 7,

    /// <summary>The port left the active state (object: port number).</summary>
    PortErr = 8,

    /// <summary>A QP with EnSqdAsyncNotify reached SQD with nothing outstanding (object: QPN).</summary>
    SqDrained = 9,

    /// <summary>The device failed and needs a reset.</summary>
    DeviceFatal = 10,
}
