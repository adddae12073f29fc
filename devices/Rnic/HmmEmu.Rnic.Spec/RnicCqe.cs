using System.Buffers.Binary;

namespace HmmEmu.Rnic;

/// <summary>
/// One completion-queue entry, 32 bytes, little-endian:
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u64</term><description>wr_id of the completed WQE.</description></item>
/// <item><term>0x08 u32</term><description>byte_len: bytes received (receive completions) or transferred.</description></item>
/// <item><term>0x0C u32</term><description>Immediate data (valid with <see cref="RnicWcFlags.WithImm"/>).</description></item>
/// <item><term>0x10 u32</term><description>qp_num: the local QP.</description></item>
/// <item><term>0x14 u32</term><description>src_qp: the peer QP (receive completions).</description></item>
/// <item><term>0x18 u8</term><description>Status (<see cref="RnicWcStatus"/>).</description></item>
/// <item><term>0x19 u8</term><description>Opcode (<see cref="RnicWcOpcode"/>).</description></item>
/// <item><term>0x1A u8</term><description>Flags (<see cref="RnicWcFlags"/>).</description></item>
/// <item><term>0x1B u8</term><description>Reserved, zero.</description></item>
/// <item><term>0x1C u16</term><description>WQE index: the SQ or RQ ring index (mod 2·size) of the completed WQE.</description></item>
/// <item><term>0x1E u8</term><description>Reserved, zero.</description></item>
/// <item><term>0x1F u8</term><description>Owner: bit 0 is the phase (<see cref="PhaseFor"/>); written last.</description></item>
/// </list>
/// </summary>
/// <remarks>
/// The device writes every other byte of the entry before the owner byte, so a consumer that sees the phase it expects
/// at slot <c>ci mod size</c> sees the whole entry. The ring starts zeroed, so phase 0 means "not yet written" on the
/// first pass; the device writes phase 1 on the first pass, 0 on the second, and so on.
/// </remarks>
/// <param name="WrId">The completed WQE's wr_id.</param>
/// <param name="ByteLen">Bytes.</param>
/// <param name="Imm">Immediate data.</param>
/// <param name="QpNumber">The local QP.</param>
/// <param name="SrcQp">The peer QP.</param>
/// <param name="Status">How the WR ended.</param>
/// <param name="Opcode">What completed.</param>
/// <param name="Flags">Flags.</param>
/// <param name="WqeIndex">The completed WQE's ring index.</param>
/// <param name="Phase">The owner phase bit.</param>
public readonly record struct RnicCqe(
    ulong WrId, uint ByteLen, uint Imm, uint QpNumber, uint SrcQp, RnicWcStatus Status, RnicWcOpcode Opcode,
    RnicWcFlags Flags, ushort WqeIndex, bool Phase)
{
    /// <summary>Bytes per CQE.</summary>
    public const int Size = 32;

    /// <summary>Offset of wr_id.</summary>
    public const int WrIdOffset = 0x00;

    /// <summary>Offset of byte_len.</summary>
    public const int ByteLenOffset = 0x08;

    /// <summary>Offset of the immediate.</summary>
    public const int ImmOffset = 0x0C;

    /// <summary>Offset of qp_num.</summary>
    public const int QpNumberOffset = 0x10;

    /// <summary>Offset of src_qp.</summary>
    public const int SrcQpOffset = 0x14;

    /// <summary>Offset of the status.</summary>
    public const int StatusOffset = 0x18;

    /// <summary>Offset of the opcode.</summary>
    public const int OpcodeOffset = 0x19;

    /// <summary>Offset of the flags.</summary>
    public const int FlagsOffset = 0x1A;

    /// <summary>Offset of the WQE index.</summary>
    public const int WqeIndexOffset = 0x1C;

    /// <summary>Offset of the owner byte.</summary>
    public const int OwnerOffset = 0x1F;

    /// <summary>The owner byte's phase bit.</summary>
    public const byte OwnerPhase = 1;

    /// <summary>The phase the device writes for producer index <paramref name="index"/> (mod 2·<paramref name="entries"/>)
    /// of a ring of <paramref name="entries"/> (a power of two): 1 on even passes, 0 on odd ones.</summary>
    public static bool PhaseFor(uint index, uint entries) => (index & entries) == 0;

    /// <summary>Whether the owner byte of <paramref name="cqe"/> carries <paramref name="phase"/> (a consumer's "is it mine yet" test).</summary>
    public static bool HasPhase(ReadOnlySpan<byte> cqe, bool phase)
    {
        LayoutCheck.Length("A CQE", Size, cqe.Length);
        return ((cqe[OwnerOffset] & OwnerPhase) != 0) == phase;
    }

    /// <summary>Decodes a CQE (exactly <see cref="Size"/> bytes).</summary>
    public static RnicCqe Read(ReadOnlySpan<byte> cqe)
    {
        LayoutCheck.Length("A CQE", Size, cqe.Length);
        return new RnicCqe(
            BinaryPrimitives.ReadUInt64LittleEndian(cqe[WrIdOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(cqe[ByteLenOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(cqe[ImmOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(cqe[QpNumberOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(cqe[SrcQpOffset..]),
            (RnicWcStatus)cqe[StatusOffset],
            (RnicWcOpcode)cqe[OpcodeOffset],
            (RnicWcFlags)cqe[FlagsOffset],
            BinaryPrimitives.ReadUInt16LittleEndian(cqe[WqeIndexOffset..]),
            (cqe[OwnerOffset] & OwnerPhase) != 0);
    }

    /// <summary>Encodes the CQE into <paramref name="cqe"/> (exactly <see cref="Size"/> bytes), reserved bytes zero,
    /// the owner byte last (a device writing shared memory then publishes the entry with that one byte).</summary>
    public void Write(Span<byte> cqe)
    {
        LayoutCheck.Length("A CQE", Size, cqe.Length);
        cqe[..OwnerOffset].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(cqe[WrIdOffset..], WrId);
        BinaryPrimitives.WriteUInt32LittleEndian(cqe[ByteLenOffset..], ByteLen);
        BinaryPrimitives.WriteUInt32LittleEndian(cqe[ImmOffset..], Imm);
        BinaryPrimitives.WriteUInt32LittleEndian(cqe[QpNumberOffset..], QpNumber);
        BinaryPrimitives.WriteUInt32LittleEndian(cqe[SrcQpOffset..], SrcQp);
        cqe[StatusOffset] = (byte)Status;
        cqe[OpcodeOffset] = (byte)Opcode;
        cqe[FlagsOffset] = (byte)Flags;
        BinaryPrimitives.WriteUInt16LittleEndian(cqe[WqeIndexOffset..], WqeIndex);
        Volatile.Write(ref cqe[OwnerOffset], Phase ? OwnerPhase : (byte)0);
    }
}
