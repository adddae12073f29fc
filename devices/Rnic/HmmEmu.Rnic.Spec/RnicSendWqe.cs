using System.Buffers.Binary;

namespace HmmEmu.Rnic;

/// <summary>
/// One send-queue WQE, 128 bytes, little-endian:
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u8</term><description>Opcode (<see cref="RnicWrOpcode"/>).</description></item>
/// <item><term>0x01 u8</term><description>Flags (<see cref="RnicSendFlags"/>).</description></item>
/// <item><term>0x02 u8</term><description>SGE count, 0..4 (atomics: exactly 1, 8 bytes, for the original value).</description></item>
/// <item><term>0x03 u8</term><description>Reserved, zero.</description></item>
/// <item><term>0x04 u32</term><description>Immediate data (the _WITH_IMM opcodes).</description></item>
/// <item><term>0x08 u64</term><description>wr_id, returned in the CQE.</description></item>
/// <item><term>0x10 u64</term><description>Remote address (RDMA and atomics; atomics 8-byte aligned).</description></item>
/// <item><term>0x18 u32</term><description>rkey (RDMA and atomics).</description></item>
/// <item><term>0x1C u32</term><description>Reserved, zero.</description></item>
/// <item><term>0x20 u64</term><description>compare_add: the compare value (CMP_AND_SWP) or the addend (FETCH_AND_ADD).</description></item>
/// <item><term>0x28 u64</term><description>swap: the new value (CMP_AND_SWP).</description></item>
/// <item><term>0x30 u8 ×16</term><description>Reserved, zero.</description></item>
/// <item><term>0x40 16 B ×4</term><description>SGEs 0..3 (<see cref="RnicSge"/>); entries past the count are ignored.</description></item>
/// </list>
/// </summary>
/// <remarks>
/// WQEs of one QP start in ring order; a WQE with an unknown opcode or flag, too many SGEs or non-zero reserved bytes
/// completes <see cref="RnicWcStatus.LocQpOpErr"/> and moves the QP to ERR.
/// </remarks>
/// <param name="Opcode">What to do.</param>
/// <param name="Flags">Options.</param>
/// <param name="SgeCount">SGEs used (0..4).</param>
/// <param name="Imm">Immediate data.</param>
/// <param name="WrId">The caller's id for the WR.</param>
/// <param name="RemoteAddress">Remote iova.</param>
/// <param name="Rkey">Remote key.</param>
/// <param name="CompareAdd">Compare value or addend.</param>
/// <param name="Swap">Swap value.</param>
/// <param name="Sge0">SGE 0.</param>
/// <param name="Sge1">SGE 1.</param>
/// <param name="Sge2">SGE 2.</param>
/// <param name="Sge3">SGE 3.</param>
public readonly record struct RnicSendWqe(
    RnicWrOpcode Opcode, RnicSendFlags Flags, byte SgeCount, uint Imm, ulong WrId, ulong RemoteAddress, uint Rkey,
    ulong CompareAdd = 0, ulong Swap = 0, RnicSge Sge0 = default, RnicSge Sge1 = default, RnicSge Sge2 = default, RnicSge Sge3 = default)
{
    /// <summary>Bytes per WQE.</summary>
    public const int Size = 128;

    /// <summary>SGEs a WQE can carry (CAPS.SEND_SGES).</summary>
    public const int MaxSge = 4;

    /// <summary>Offset of the opcode.</summary>
    public const int OpcodeOffset = 0x00;

    /// <summary>Offset of the flags.</summary>
    public const int FlagsOffset = 0x01;

    /// <summary>Offset of the SGE count.</summary>
    public const int SgeCountOffset = 0x02;

    /// <summary>Offset of the reserved byte.</summary>
    public const int Reserved0Offset = 0x03;

    /// <summary>Offset of the immediate.</summary>
    public const int ImmOffset = 0x04;

    /// <summary>Offset of wr_id.</summary>
    public const int WrIdOffset = 0x08;

    /// <summary>Offset of the remote address.</summary>
    public const int RemoteAddressOffset = 0x10;

    /// <summary>Offset of the rkey.</summary>
    public const int RkeyOffset = 0x18;

    /// <summary>Offset of the reserved word after the rkey.</summary>
    public const int Reserved1Offset = 0x1C;

    /// <summary>Offset of compare_add.</summary>
    public const int CompareAddOffset = 0x20;

    /// <summary>Offset of swap.</summary>
    public const int SwapOffset = 0x28;

    /// <summary>Offset of the 16 reserved bytes.</summary>
    public const int Reserved2Offset = 0x30;

    /// <summary>Offset of SGE 0; SGE n is <see cref="RnicSge.Size"/>·n bytes further.</summary>
    public const int SgesOffset = 0x40;

    /// <summary>Every defined flag.</summary>
    public const RnicSendFlags DefinedFlags = RnicSendFlags.Fence | RnicSendFlags.Signaled | RnicSendFlags.Solicited;

    /// <summary>SGE <paramref name="index"/> (0..3).</summary>
    public RnicSge Sge(int index) => index switch
    {
        0 => Sge0,
        1 => Sge1,
        2 => Sge2,
        3 => Sge3,
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "A send WQE has SGEs 0 to 3."),
    };

    /// <summary>Sum of the lengths of the SGEs in use (0 when the count is out of range).</summary>
    public ulong TotalLength()
    {
        if (SgeCount > MaxSge)
            return 0;
        ulong total = 0;
        for (int i = 0; i < SgeCount; i++)
            total += Sge(i).Length;
        return total;
    }

    /// <summary>Decodes a WQE (exactly <see cref="Size"/> bytes). Never throws on content; reserved fields are not checked here.</summary>
    public static RnicSendWqe Read(ReadOnlySpan<byte> wqe)
    {
        LayoutCheck.Length("A send WQE", Size, wqe.Length);
        return new RnicSendWqe(
            (RnicWrOpcode)wqe[OpcodeOffset],
            (RnicSendFlags)wqe[FlagsOffset],
            wqe[SgeCountOffset],
            BinaryPrimitives.ReadUInt32LittleEndian(wqe[ImmOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(wqe[WrIdOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(wqe[RemoteAddressOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(wqe[RkeyOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(wqe[CompareAddOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(wqe[SwapOffset..]),
            RnicSge.Read(wqe.Slice(SgesOffset, RnicSge.Size)),
            RnicSge.Read(wqe.Slice(SgesOffset + RnicSge.Size, RnicSge.Size)),
            RnicSge.Read(wqe.Slice(SgesOffset + (2 * RnicSge.Size), RnicSge.Size)),
            RnicSge.Read(wqe.Slice(SgesOffset + (3 * RnicSge.Size), RnicSge.Size)));
    }

    /// <summary>Whether the reserved bytes of <paramref name="wqe"/> are zero (the device fails the WQE otherwise).</summary>
    public static bool ReservedIsZero(ReadOnlySpan<byte> wqe)
    {
        LayoutCheck.Length("A send WQE", Size, wqe.Length);
        return wqe[Reserved0Offset] == 0
            && BinaryPrimitives.ReadUInt32LittleEndian(wqe[Reserved1Offset..]) == 0
            && !wqe.Slice(Reserved2Offset, SgesOffset - Reserved2Offset).ContainsAnyExcept((byte)0);
    }

    /// <summary>Encodes the WQE into <paramref name="wqe"/> (exactly <see cref="Size"/> bytes), reserved bytes zero.</summary>
    public void Write(Span<byte> wqe)
    {
        LayoutCheck.Length("A send WQE", Size, wqe.Length);
        wqe.Clear();
        wqe[OpcodeOffset] = (byte)Opcode;
        wqe[FlagsOffset] = (byte)Flags;
        wqe[SgeCountOffset] = SgeCount;
        BinaryPrimitives.WriteUInt32LittleEndian(wqe[ImmOffset..], Imm);
        BinaryPrimitives.WriteUInt64LittleEndian(wqe[WrIdOffset..], WrId);
        BinaryPrimitives.WriteUInt64LittleEndian(wqe[RemoteAddressOffset..], RemoteAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(wqe[RkeyOffset..], Rkey);
        BinaryPrimitives.WriteUInt64LittleEndian(wqe[CompareAddOffset..], CompareAdd);
        BinaryPrimitives.WriteUInt64LittleEndian(wqe[SwapOffset..], Swap);
        for (int i = 0; i < MaxSge; i++)
            Sge(i).Write(wqe.Slice(SgesOffset + (i * RnicSge.Size), RnicSge.Size));
    }
}
