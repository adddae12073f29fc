namespace HmmEmu.Rnic;

/// <summary>AETH syndromes (byte 0x20 of an <see cref="RnicPacketHeader"/>): the IBA ACK, RNR NAK and NAK codes, one value each.</summary>
public enum RnicAckSyndrome : byte
{
    /// <summary>ACK: every PSN up to and including this one was executed.</summary>
    Ack = 0,

    /// <summary>RNR NAK: receiver not ready at this PSN (no receive WQE, or a responder page fault pending); retry after the RNR timer in byte 0x21.</summary>
    RnrNak = 1,

    /// <summary>NAK, PSN sequence error: a PSN was skipped; retransmit from this PSN (counts against RETRY_CNT).</summary>
    NakPsnSequenceError = 2,

    /// <summary>NAK, invalid request: the requester completes RemInvReqErr and both QPs go to ERR.</summary>
    NakInvalidRequest = 3,

    /// <summary>NAK, remote access error: the requester completes RemAccessErr and both QPs go to ERR.</summary>
    NakRemoteAccessError = 4,

    /// <summary>NAK, remote operational error: the requester completes RemOpErr and both QPs go to ERR.</summary>
    NakRemoteOperationalError = 5,
}
