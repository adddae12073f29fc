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

    /// <summary>The header.</summary>
    public RnicPacketHeader Header { get; }

    /// <summary>The payload bytes (empty for requests and acknowledgements that carry none).</summary>
    public byte[] Payload { get; }

    /// <summary>Bytes on the wire: header plus payload.</summary>
    public int WireBytes => RnicPacketHeader.Size + Payload.Length;

    /// <inheritdoc />
    public override string ToString() =>
        $"{Header.Opcode} qpn={Header.DestQpn} psn={Header.Psn} len={Payload.Length}";
}
