namespace HmmEmu.Rnic;

/// <summary>QP states, with the values of libibverbs' <c>ibv_qp_state</c>.</summary>
public enum RnicQpState : byte
{
    /// <summary>Created or reset: no WQE is processed, doorbells are dropped.</summary>
    Reset = 0,

    /// <summary>Initialised: receive WQEs may be posted; nothing is sent or received.</summary>
    Init = 1,

    /// <summary>Ready to receive: the responder answers requests; nothing is sent.</summary>
    Rtr = 2,

    /// <summary>Ready to send: requester, responder and completer all run.</summary>
    Rts = 3,

    /// <summary>Send queue drained: the requester starts no new WQE; outstanding ones finish.</summary>
    Sqd = 4,

    /// <summary>Send queue error (IB defines it for UC/UD; an RC QP of this device never enters it on its own).</summary>
    Sqe = 5,

    /// <summary>Error: every outstanding and newly posted WQE completes with <see cref="RnicWcStatus.WrFlushErr"/>.</summary>
    Err = 6,
}
