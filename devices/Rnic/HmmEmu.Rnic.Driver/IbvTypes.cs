namespace HmmEmu.Rnic.Driver;

/// <summary>ibv_event_type: the async events a context receives.</summary>
public enum IbvEventType
{
    /// <summary>IBV_EVENT_CQ_ERR: a CQ overran and stopped.</summary>
    CqErr,

    /// <summary>IBV_EVENT_QP_FATAL: the QP went to ERR (malformed WQE, CQ overrun, failed requester RESUME).</summary>
    QpFatal,

    /// <summary>IBV_EVENT_QP_REQ_ERR: the responder got an invalid request.</summary>
    QpReqErr,

    /// <summary>IBV_EVENT_QP_ACCESS_ERR: the responder hit a remote access violation or a failed responder RESUME.</summary>
    QpAccessErr,

    /// <summary>IBV_EVENT_SQ_DRAINED: an SQD QP has nothing outstanding.</summary>
    SqDrained,

    /// <summary>IBV_EVENT_PORT_ACTIVE.</summary>
    PortActive,

    /// <summary>IBV_EVENT_PORT_ERR.</summary>
    PortErr,

    /// <summary>IBV_EVENT_DEVICE_FATAL.</summary>
    DeviceFatal,
}

/// <summary>Maps the device's event types to <see cref="IbvEventType"/>.</summary>
internal static class IbvEventTypes
{
    public static IbvEventType Of(RnicEventType type) => type switch
    {
        RnicEventType.QpFatal => IbvEventType.QpFatal,
        RnicEventType.QpReqErr => IbvEventType.QpReqErr,
        RnicEventType.QpAccessErr => IbvEventType.QpAccessErr,
        RnicEventType.CqErr => IbvEventType.CqErr,
        RnicEventType.SqDrained => IbvEventType.SqDrained,
        RnicEventType.PortActive => IbvEventType.PortActive,
        RnicEventType.PortErr => IbvEventType.PortErr,
        _ => IbvEventType.DeviceFatal,
    };
}

/// <summary>An async event (ibv_async_event): its type, the QP or CQ number it concerns, and the status behind it.</summary>
public readonly record struct IbvAsyncEvent(IbvEventType Type, uint ObjectNumber, RnicWcStatus Status);

/// <summary>ibv_advise_mr_advice.</summary>
public enum IbvAdvice
{
    /// <summary>IBV_ADVISE_MR_ADVICE_PREFETCH: map the pages for reading.</summary>
    Prefetch,

    /// <summary>IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE: map the pages writable.</summary>
    PrefetchWrite,
}

/// <summary>ibv_qp_init_attr for an RC QP.</summary>
/// <param name="SendCq">The CQ of send completions.</param>
/// <param name="RecvCq">The CQ of receive completions.</param>
/// <param name="MaxSendWr">Send WQEs the SQ holds (rounded up to a power of two).</param>
/// <param name="MaxRecvWr">Receive WQEs the RQ holds (rounded up to a power of two).</param>
public readonly record struct IbvQpInitAttr(IbvCq SendCq, IbvCq RecvCq, int MaxSendWr, int MaxRecvWr);

/// <summary>ibv_send_wr: one send work request (up to four SGEs).</summary>
/// <param name="WrId">The caller's id, returned in the work completion.</param>
/// <param name="Opcode">The operation.</param>
/// <param name="Flags">SIGNALED, SOLICITED, FENCE.</param>
/// <param name="Sges">The local scatter/gather list (atomics: one 8-byte SGE for the original value).</param>
/// <param name="RemoteAddress">The remote iova (RDMA and atomics).</param>
/// <param name="Rkey">The remote key (RDMA and atomics).</param>
/// <param name="Imm">Immediate data (the _WITH_IMM opcodes).</param>
/// <param name="CompareAdd">Compare value (CMP_AND_SWP) or addend (FETCH_AND_ADD).</param>
/// <param name="Swap">Swap value (CMP_AND_SWP).</param>
public readonly record struct IbvSendWr(ulong WrId, RnicWrOpcode Opcode, RnicSendFlags Flags, RnicSge[] Sges,
    ulong RemoteAddress = 0, uint Rkey = 0, uint Imm = 0, ulong CompareAdd = 0, ulong Swap = 0);

/// <summary>ibv_recv_wr: one receive work request (up to three SGEs).</summary>
/// <param name="WrId">The caller's id, returned in the work completion.</param>
/// <param name="Sges">Where the incoming SEND lands.</param>
public readonly record struct IbvRecvWr(ulong WrId, RnicSge[] Sges);
