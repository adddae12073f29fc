namespace HmmEmu.Rnic.Model;

/// <summary>
/// One send WQE the requester has started: the PSNs it owns, how far it has been sent and (READ, atomics) placed,
/// and how it ended. Lives in its QP's outstanding list, under the QP's lock, from fetch to retirement.
/// </summary>
internal sealed class RnicSendOp(uint index, RnicSendWqe wqe, uint firstPsn, int packets, int mtu)
{
    /// <summary>The SQ ring index (with wrap bit) of the WQE.</summary>
    public uint Index { get; } = index;

    public RnicSendWqe Wqe { get; } = wqe;

    public uint FirstPsn { get; } = firstPsn;

    /// <summary>PSNs the message owns: one per request packet, one per READ response packet, one per atomic.</summary>
    public int Packets { get; } = packets;

    public int Mtu { get; } = mtu;

    public ulong Length { get; } = wqe.TotalLength();

    public uint LastPsn => RnicPacketHeader.PsnAdd(FirstPsn, (uint)(Packets - 1));

    public bool IsRead => Wqe.Opcode == RnicWrOpcode.RdmaRead;

    public bool IsAtomic => Wqe.Opcode is RnicWrOpcode.AtomicCmpAndSwp or RnicWrOpcode.AtomicFetchAndAdd;

    /// <summary>Whether the message completes on its responses (READ, atomics) rather than on an ACK.</summary>
    public bool NeedsResponse => IsRead || IsAtomic;

    /// <summary>READ: response packets placed so far (in order); an atomic: 1 once its result is placed.</summary>
    public int Placed { get; set; }

    /// <summary>The placed count at which a lost READ response was last asked for again (-1: never).</summary>
    public int GapAt { get; set; } = -1;

    /// <summary>Whether the message is done (ACKed, or every response placed).</summary>
    public bool Done { get; set; }

    /// <summary>The completion status once it ended in error.</summary>
    public RnicWcStatus Error { get; set; }

    public bool Failed => Error != RnicWcStatus.Success;

    /// <summary>The original value an atomic returned.</summary>
    public ulong AtomicResult { get; set; }

    /// <summary>Whether the offset of packet <paramref name="k"/> is the message's last packet.</summary>
    public bool IsLastPacket(int k) => k == Packets - 1;

    /// <summary>PSN offset of <paramref name="psn"/> within the message, or -1 if outside.</summary>
    public int OffsetOf(uint psn)
    {
        int d = RnicPacketHeader.PsnDiff(psn, FirstPsn);
        return d >= 0 && d < Packets ? d : -1;
    }

    public override string ToString() => $"WQE {Index} {Wqe.Opcode} psn {FirstPsn}+{Packets}";
}
