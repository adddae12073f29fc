namespace HmmEmu.Rnic;

/// <summary>Wire opcodes of the simulated link (byte 0x00 of an <see cref="RnicPacketHeader"/>), with the values of the IBA RC opcodes.</summary>
public enum RnicPacketOpcode : byte
{
    /// <summary>First packet of a multi-packet SEND.</summary>
    SendFirst = 0x00,

    /// <summary>Middle packet of a SEND.</summary>
    SendMiddle = 0x01,

    /// <summary>Last packet of a SEND.</summary>
    SendLast = 0x02,

    /// <summary>Last packet of a SEND with immediate.</summary>
    SendLastWithImm = 0x03,

    /// <summary>A SEND in one packet.</summary>
    SendOnly = 0x04,

    /// <summary>A SEND with immediate in one packet.</summary>
    SendOnlyWithImm = 0x05,

    /// <summary>First packet of an RDMA WRITE (carries RETH).</summary>
    RdmaWriteFirst = 0x06,

    /// <summary>Middle packet of an RDMA WRITE.</summary>
    RdmaWriteMiddle = 0x07,

    /// <summary>Last packet of an RDMA WRITE.</summary>
    RdmaWriteLast = 0x08,

    /// <summary>Last packet of an RDMA WRITE with immediate.</summary>
    RdmaWriteLastWithImm = 0x09,

    /// <summary>An RDMA WRITE in one packet (carries RETH).</summary>
    RdmaWriteOnly = 0x0A,

    /// <summary>An RDMA WRITE with immediate in one packet (carries RETH).</summary>
    RdmaWriteOnlyWithImm = 0x0B,

    /// <summary>An RDMA READ request (carries RETH; consumes one PSN per response packet).</summary>
    RdmaReadRequest = 0x0C,

    /// <summary>First packet of a READ response (carries AETH).</summary>
    RdmaReadResponseFirst = 0x0D,

    /// <summary>Middle packet of a READ response.</summary>
    RdmaReadResponseMiddle = 0x0E,

    /// <summary>Last packet of a READ response (carries AETH).</summary>
    RdmaReadResponseLast = 0x0F,

    /// <summary>A READ response in one packet (carries AETH).</summary>
    RdmaReadResponseOnly = 0x10,

    /// <summary>ACK, NAK or RNR NAK (carries AETH).</summary>
    Acknowledge = 0x11,

    /// <summary>The response to an atomic (carries AETH and the original value).</summary>
    AtomicAcknowledge = 0x12,

    /// <summary>A compare-and-swap request (carries AtomicETH).</summary>
    CompareSwap = 0x13,

    /// <summary>A fetch-and-add request (carries AtomicETH).</summary>
    FetchAdd = 0x14,
}
