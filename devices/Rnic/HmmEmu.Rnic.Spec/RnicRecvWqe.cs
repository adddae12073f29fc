using System.Buffers.Binary;

namespace HmmEmu.Rnic;

/// <summary>
/// One receive-queue WQE, 64 bytes, little-endian:
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u64</term><description>wr_id, returned in the CQE.</description></item>
/// <item><term>0x08 u8</term><description>SGE count, 0..3.</description></item>
/// <item><term>0x09 u8 ×7</term><description>Reserved, zero.</description></item>
/// <item><term>0x10 16 B ×3</term><description>SGEs 0..2 (<see cref="RnicSge"/>); entries past the count are ignored.</description></item>
/// </list>
/// </summary>
/// <param name="WrId">The caller's id for the WR.</param>
/// <param name="SgeCount">SGEs used (0..3).</param>
/// <param name="Sge0">SGE 0.</param>
/// <param name="Sge1">SGE 1.</param>
/// <param name="Sge2">SGE 2.</param>
public readonly record struct RnicRecvWqe(ulong WrId, byte SgeCount, RnicSge Sge0 = default, RnicSge Sge1 = default, RnicSge Sge2 = default)
{
    /// <summary>Bytes per WQE.</summary>
    public const int Size = 64;

    /// <summary>SGEs a WQE can carry (CAPS.RECV_SGES).</summary>
    public const int MaxSge = 3;

    /// <summary>Offset of wr_id.</summary>
    public const int WrIdOffset = 0x00;

    /// <summary>Offset of the SGE count.</summary>
    public const int SgeCountOffset = 0x08;

    /// <summary>Offset of the 7 reserved bytes.</summary>
    public const int ReservedOffset = 0x09;

    /// <summary>Offset of SGE 0; SGE n is <see cref="RnicSge.Size"/>·n bytes further.</summary>
    public const int SgesOffset = 0x10;

    /// <summary>SGE <paramref name="index"/> (0..2).</summary>
    public RnicSge Sge(int index) => index switch
    {
        0 => Sge0,
        1 => Sge1,
        2 => Sge2,
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "A receive WQE has SGEs 0 to 2."),
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

    /// <summary>Decodes a WQE (exactly <see cref="Size"/> bytes). Never throws on content.</summary>
    public static RnicRecvWqe Read(ReadOnlySpan<byte> wqe)
    {
        LayoutCheck.Length("A receive WQE", Size, wqe.Length);
        return new RnicRecvWqe(
            BinaryPrimitives.ReadUInt64LittleEndian(wqe[WrIdOffset..]),
            wqe[SgeCountOffset],
            RnicSge.Read(wqe.Slice(SgesOffset, RnicSge.Size)),
            RnicSge.Read(wqe.Slice(SgesOffset + RnicSge.Size, RnicSge.Size)),
            RnicSge.Read(wqe.Slice(SgesOffset + (2 * RnicSge.Size), RnicSge.Size)));
    }

    /// <summary>Whether the reserved bytes of <paramref name="wqe"/> are zero (the device fails the WQE otherwise).</summary>
    public static bool ReservedIsZero(ReadOnlySpan<byte> wqe)
    {
        LayoutCheck.Length("A receive WQE", Size, wqe.Length);
        return !wqe[ReservedOffset..SgesOffset].ContainsAnyExcept((byte)0);
    }

    /// <summary>Encodes the WQE into <paramref name="wqe"/> (exactly <see cref="Size"/> bytes), reserved bytes zero.</summary>
    public void Write(Span<byte> wqe)
    {
        LayoutCheck.Length("A receive WQE", Size, wqe.Length);
        wqe.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(wqe[WrIdOffset..], WrId);
        wqe[SgeCountOffset] = SgeCount;
        for (int i = 0; i < MaxSge; i++)
            Sge(i).Write(wqe.Slice(SgesOffset + (i * RnicSge.Size), RnicSge.Size));
    }
}
