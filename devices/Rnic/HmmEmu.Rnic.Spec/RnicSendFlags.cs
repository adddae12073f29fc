namespace HmmEmu.Rnic;

/// <summary>Send WQE flags (byte 0x01 of an <see cref="RnicSendWqe"/>), with the bit values of libibverbs' <c>ibv_send_flags</c>.</summary>
[Flags]
public enum RnicSendFlags : byte
{
    /// <summary>None: the WQE completes silently unless it fails.</summary>
    None = 0,

    /// <summary>Start only after every earlier RDMA READ and atomic of this QP has completed.</summary>
    Fence = 1 << 0,

    /// <summary>Write a CQE to the send CQ when the WQE completes successfully (errors always write one).</summary>
    Signaled = 1 << 1,

    /// <summary>Set the solicited bit, so a receive CQ armed for solicited completions fires at the peer.</summary>
    Solicited = 1 << 2,
}
