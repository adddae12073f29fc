namespace HmmEmu.Rnic;

/// <summary>Work-completion statuses (byte 0x18 of an <see cref="RnicCqe"/>), with the names and values of libibverbs' <c>ibv_wc_status</c>.</summary>
public enum RnicWcStatus : byte
{
    /// <summary>The WR completed.</summary>
    Success = 0,

    /// <summary>Local length error: a message longer than the receive buffers, or an SGE total over the limit.</summary>
    LocLenErr = 1,

    /// <summary>Local QP operation error: a malformed WQE (unknown opcode, too many SGEs, bad atomic result SGE).</summary>
    LocQpOpErr = 2,

    /// <summary>Local EE context operation error (unused: no EE contexts).</summary>
    LocEecOpErr = 3,

    /// <summary>Local protection error: an lkey that is invalid, of another PD, lacks a right, or does not cover the SGE.</summary>
    LocProtErr = 4,

    /// <summary>The WR was flushed because the QP is in the error state.</summary>
    WrFlushErr = 5,

    /// <summary>Memory window bind error (unused: no memory windows).</summary>
    MwBindErr = 6,

    /// <summary>Bad response: an unexpected opcode or length in a response.</summary>
    BadRespErr = 7,

    /// <summary>Local access error: the responder could not place an incoming RDMA WRITE with immediate.</summary>
    LocAccessErr = 8,

    /// <summary>Remote invalid request: the peer NAKed the request as invalid (length, misaligned atomic, no receive opcode).</summary>
    RemInvReqErr = 9,

    /// <summary>Remote access error: the peer NAKed the rkey (invalid, other PD, right missing, out of bounds, or a failed ODP fault).</summary>
    RemAccessErr = 10,

    /// <summary>Remote operation error: the peer could not complete the request.</summary>
    RemOpErr = 11,

    /// <summary>Transport retries (timeouts or NAKs) exceeded RETRY_CNT.</summary>
    RetryExcErr = 12,

    /// <summary>RNR NAK retries exceeded RNR_RETRY.</summary>
    RnrRetryExcErr = 13,

    /// <summary>Local RDD violation (unused).</summary>
    LocRddViolErr = 14,

    /// <summary>Remote invalid RD request (unused).</summary>
    RemInvRdReqErr = 15,

    /// <summary>Remote aborted error: the peer aborted the operation.</summary>
    RemAbortErr = 16,

    /// <summary>Invalid EE context number (unused).</summary>
    InvEecnErr = 17,

    /// <summary>Invalid EE context state (unused).</summary>
    InvEecStateErr = 18,

    /// <summary>Fatal error: the device failed (reset during the WR).</summary>
    FatalErr = 19,

    /// <summary>Response timeout error.</summary>
    RespTimeoutErr = 20,

    /// <summary>General error not covered above.</summary>
    GeneralErr = 21,
}
