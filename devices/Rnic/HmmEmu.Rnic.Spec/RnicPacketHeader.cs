using System.Buffers.Binary;

namespace HmmEmu.Rnic;

/// <summary>
/// The header of a packet on the simulated link, 64 bytes, little-endian: a BTH-like base header followed by the
/// RETH, AETH, ImmDt and AtomicETH fields at fixed offsets (a field an opcode does not carry is zero). The payload,
/// at most the path MTU, follows the header.
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u8</term><description>BTH opcode (<see cref="RnicPacketOpcode"/>).</description></item>
/// <item><term>0x01 u8</term><description>BTH flags (<see cref="RnicPacketFlags"/>: AckRequest, Solicited).</description></item>
/// <item><term>0x02 u16</term><description>Reserved, zero.</description></item>
/// <item><term>0x04 u32</term><description>BTH destination QPN (24-bit).</description></item>
/// <item><term>0x08 u32</term><description>BTH PSN (24-bit).</description></item>
/// <item><term>0x0C u32</term><description>Source QPN (24-bit; the link's addition, reported as src_qp).</description></item>
/// <item><term>0x10 u64</term><description>RETH/AtomicETH virtual address (first packet of WRITE, READ request, atomics).</description></item>
/// <item><term>0x18 u32</term><description>RETH/AtomicETH rkey.</description></item>
/// <item><term>0x1C u32</term><description>RETH DMA length: bytes of the whole WRITE or READ.</description></item>
/// <item><term>0x20 u8</term><description>AETH syndrome (<see cref="RnicAckSyndrome"/>; ACK, NAK, read responses, atomic ACK).</description></item>
/// <item><term>0x21 u8</term><description>AETH value: the RNR timer code of an RNR NAK, else 0.</description></item>
/// <item><term>0x22 u16</term><description>Reserved, zero.</description></item>
/// <item><term>0x24 u32</term><description>AETH MSN: messages the responder has completed (24-bit).</description></item>
/// <item><term>0x28 u32</term><description>ImmDt: immediate data (last packet of a _WITH_IMM message).</description></item>
/// <item><term>0x2C u32</term><description>Payload length: bytes following the header in this packet.</description></item>
/// <item><term>0x30 u64</term><description>AtomicETH swap/add data; AtomicAckETH original value.</description></item>
/// <item><term>0x38 u64</term><description>AtomicETH compare data.</description></item>
/// </list>
/// </summary>
/// <param name="Opcode">BTH opcode.</param>
/// <param name="Flags">BTH flags.</param>
/// <param name="DestQpn">Destination QP.</param>
/// <param name="Psn">Packet sequence number.</param>
/// <param name="SrcQpn">Source QP.</param>
/// <param name="VirtualAddress">RETH/AtomicETH address.</param>
/// <param name="Rkey">RETH/AtomicETH rkey.</param>
/// <param name="DmaLength">RETH length.</param>
/// <param name="Syndrome">AETH syndrome.</param>
/// <param name="SyndromeValue">AETH value (RNR timer code).</param>
/// <param name="Msn">AETH MSN.</param>
/// <param name="Imm">Immediate data.</param>
/// <param name="PayloadLength">Payload bytes.</param>
/// <param name="SwapAdd">Atomic swap/add data, or the atomic ACK's original value.</param>
/// <param name="Compare">Atomic compare data.</param>
public readonly record struct RnicPacketHeader(
    RnicPacketOpcode Opcode, RnicPacketFlags Flags, uint DestQpn, uint Psn, uint SrcQpn,
    ulong VirtualAddress = 0, uint Rkey = 0, uint DmaLength = 0, RnicAckSyndrome Syndrome = RnicAckSyndrome.Ack,
    byte SyndromeValue = 0, uint Msn = 0, uint Imm = 0, uint PayloadLength = 0, ulong SwapAdd = 0, ulong Compare = 0)
{
    /// <summary>Bytes per header.</summary>
    public const int Size = 64;

    /// <summary>Offset of the opcode.</summary>
    public const int OpcodeOffset = 0x00;

    /// <summary>Offset of the flags.</summary>
    public const int FlagsOffset = 0x01;

    /// <summary>Offset of the reserved half-word after the flags.</summary>
    public const int Reserved0Offset = 0x02;

    /// <summary>Offset of the destination QPN.</summary>
    public const int DestQpnOffset = 0x04;

    /// <summary>Offset of the PSN.</summary>
    public const int PsnOffset = 0x08;

    /// <summary>Offset of the source QPN.</summary>
    public const int SrcQpnOffset = 0x0C;

    /// <summary>Offset of the RETH/AtomicETH virtual address.</summary>
    public const int VirtualAddressOffset = 0x10;

    /// <summary>Offset of the RETH/AtomicETH rkey.</summary>
    public const int RkeyOffset = 0x18;

    /// <summary>Offset of the RETH DMA length.</summary>
    public const int DmaLengthOffset = 0x1C;

    /// <summary>Offset of the AETH syndrome.</summary>
    public const int SyndromeOffset = 0x20;

    /// <summary>Offset of the AETH value.</summary>
    public const int SyndromeValueOffset = 0x21;

    /// <summary>Offset of the reserved half-word in the AETH.</summary>
    public const int Reserved1Offset = 0x22;

    /// <summary>Offset of the AETH MSN.</summary>
    public const int MsnOffset = 0x24;

    /// <summary>Offset of the immediate.</summary>
    public const int ImmOffset = 0x28;

    /// <summary>Offset of the payload length.</summary>
    public const int PayloadLengthOffset = 0x2C;

    /// <summary>Offset of the swap/add data.</summary>
    public const int SwapAddOffset = 0x30;

    /// <summary>Offset of the compare data.</summary>
    public const int CompareOffset = 0x38;

    /// <summary>Mask of a PSN, QPN or MSN (24 bits).</summary>
    public const uint Mask24 = 0xFF_FFFF;

    /// <summary>The largest payload of one packet at <paramref name="mtu"/>.</summary>
    public static int MaxPayload(RnicMtu mtu) => 128 << (int)mtu;

    /// <summary><paramref name="psn"/> + <paramref name="delta"/>, modulo 2^24.</summary>
    public static uint PsnAdd(uint psn, uint delta) => (psn + delta) & Mask24;

    /// <summary>The signed distance <paramref name="a"/> − <paramref name="b"/> in 24-bit PSN space (−2^23..2^23−1): positive when a is after b.</summary>
    public static int PsnDiff(uint a, uint b) => (int)((a - b) << 8) >> 8;

    /// <summary>Decodes a header (exactly <see cref="Size"/> bytes).</summary>
    public static RnicPacketHeader Read(ReadOnlySpan<byte> header)
    {
        LayoutCheck.Length("A packet header", Size, header.Length);
        return new RnicPacketHeader(
            (RnicPacketOpcode)header[OpcodeOffset],
            (RnicPacketFlags)header[FlagsOffset],
            BinaryPrimitives.ReadUInt32LittleEndian(header[DestQpnOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(header[PsnOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(header[SrcQpnOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(header[VirtualAddressOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(header[RkeyOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(header[DmaLengthOffset..]),
            (RnicAckSyndrome)header[SyndromeOffset],
            header[SyndromeValueOffset],
            BinaryPrimitives.ReadUInt32LittleEndian(header[MsnOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(header[ImmOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(header[PayloadLengthOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(header[SwapAddOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(header[CompareOffset..]));
    }

    /// <summary>Encodes the header into <paramref name="header"/> (exactly <see cref="Size"/> bytes), reserved bytes zero.</summary>
    public void Write(Span<byte> header)
    {
        LayoutCheck.Length("A packet header", Size, header.Length);
        header[OpcodeOffset] = (byte)Opcode;
        header[FlagsOffset] = (byte)Flags;
        BinaryPrimitives.WriteUInt16LittleEndian(header[Reserved0Offset..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[DestQpnOffset..], DestQpn);
        BinaryPrimitives.WriteUInt32LittleEndian(header[PsnOffset..], Psn);
        BinaryPrimitives.WriteUInt32LittleEndian(header[SrcQpnOffset..], SrcQpn);
        BinaryPrimitives.WriteUInt64LittleEndian(header[VirtualAddressOffset..], VirtualAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(header[RkeyOffset..], Rkey);
        BinaryPrimitives.WriteUInt32LittleEndian(header[DmaLengthOffset..], DmaLength);
        header[SyndromeOffset] = (byte)Syndrome;
        header[SyndromeValueOffset] = SyndromeValue;
        BinaryPrimitives.WriteUInt16LittleEndian(header[Reserved1Offset..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[MsnOffset..], Msn);
        BinaryPrimitives.WriteUInt32LittleEndian(header[ImmOffset..], Imm);
        BinaryPrimitives.WriteUInt32LittleEndian(header[PayloadLengthOffset..], PayloadLength);
        BinaryPrimitives.WriteUInt64LittleEndian(header[SwapAddOffset..], SwapAdd);
        BinaryPrimitives.WriteUInt64LittleEndian(header[CompareOffset..], Compare);
    }
}
