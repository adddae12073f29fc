namespace HmmEmu.Rnic.Model;

/// <summary>
/// One packet on the link: a <see cref="RnicPacketHeader"/> and at most one path MTU of payload. The payload is the
/// packet's own copy of the bytes, taken when the packet was built, as a NIC's DMA read would capture them.
/// </summary>
/// <remarks>
/// A packet is immutable once sent. The link may deliver the same instance twice (duplication), so receivers never
/// change it. Payload buffers are plain arrays, owned by the packet; the garbage collector reclaims them.
/// </remarks>
public sealed class RnicPacket
{
    /// <summary>Creates a packet with <paramref name="payload"/> (its whole length is the payload).</summary>
    public RnicPacket(RnicPacketHeader header, byte[]? payload = null)
    {
        Header = header;
        Payload = payload ?? [];
    }

    // A segment: several packets of one message with their payload still in the sender's memory (see RnicSegment).
    internal RnicPacket(RnicSegment segment)
    {
        Header = segment.Header;
        Payload = [];
        Segment = segment;
    }

    /// <summary>The header.</summary>
    public RnicPacketHeader Header { get; }

    /// <summary>The payload bytes (empty for requests and acknowledgements that carry none).</summary>
    public byte[] Payload { get; }

    /// <summary>Bytes on the wire: header plus payload (for a segment, every packet's).</summary>
    public int WireBytes => Segment?.WireBytes ?? RnicPacketHeader.Size + Payload.Length;

    /// <summary>The segment this object carries instead of one packet, or null.</summary>
    internal RnicSegment? Segment { get; }

    /// <summary>How many packets this object stands for: 1, or a segment's packets.</summary>
    internal int PacketCount => Segment?.Count ?? 1;

    /// <inheritdoc />
    public override string ToString() =>
        Segment is { } segment
            ? $"{Header.Opcode} qpn={Header.DestQpn} psn={Header.Psn}+{segment.Count} len={segment.PayloadBytes} (segment)"
            : $"{Header.Opcode} qpn={Header.DestQpn} psn={Header.Psn} len={Payload.Length}";
}
