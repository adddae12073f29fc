namespace HmmEmu.Rnic;

/// <summary>MODIFY_QP attribute mask, with the bit values of libibverbs' <c>ibv_qp_attr_mask</c> (the device has no
/// alternate path, so ALT_PATH, PATH_MIG_STATE and CAP are not defined and are refused).</summary>
[Flags]
public enum RnicQpAttrMask : uint
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>The target state is the block's State (otherwise the QP stays in its state).</summary>
    State = 1u << 0,

    /// <summary>The block's CurState must equal the QP's state (allowed only from RTR, RTS, SQD or SQE).</summary>
    CurState = 1u << 1,

    /// <summary>Raise an SqDrained event when SQD is reached.</summary>
    EnSqdAsyncNotify = 1u << 2,

    /// <summary>The remote access rights of the QP (RemoteWrite, RemoteRead, RemoteAtomic).</summary>
    AccessFlags = 1u << 3,

    /// <summary>Partition key index.</summary>
    PkeyIndex = 1u << 4,

    /// <summary>Port number (1).</summary>
    Port = 1u << 5,

    /// <summary>Q_Key (UD only; refused for RC).</summary>
    Qkey = 1u << 6,

    /// <summary>Address vector: the peer port's address on the link.</summary>
    Av = 1u << 7,

    /// <summary>Path MTU.</summary>
    PathMtu = 1u << 8,

    /// <summary>Local ACK timeout (4.096 µs · 2^timeout).</summary>
    Timeout = 1u << 9,

    /// <summary>Retransmissions on timeout or NAK before RetryExcErr (0..7).</summary>
    RetryCnt = 1u << 10,

    /// <summary>Retries on RNR NAK before RnrRetryExcErr (0..6, 7 = without limit).</summary>
    RnrRetry = 1u << 11,

    /// <summary>The first PSN the responder expects.</summary>
    RqPsn = 1u << 12,

    /// <summary>Outstanding RDMA READ/atomic requests as initiator.</summary>
    MaxQpRdAtomic = 1u << 13,

    /// <summary>The RNR timer this QP's responder puts in its RNR NAKs.</summary>
    MinRnrTimer = 1u << 15,

    /// <summary>The first PSN the requester sends.</summary>
    SqPsn = 1u << 16,

    /// <summary>Outstanding RDMA READ/atomic requests as responder.</summary>
    MaxDestRdAtomic = 1u << 17,

    /// <summary>The peer QP's number.</summary>
    DestQpn = 1u << 20,
}
