using System.Buffers.Binary;

namespace HmmEmu.Rnic;

/// <summary>
/// One scatter/gather element, 16 bytes, little-endian: address u64 at 0x00, length u32 at 0x08, lkey u32 at 0x0C.
/// The address is an iova of the MR the lkey names; the range must lie inside that MR.
/// </summary>
/// <param name="Address">First byte (an iova in the lkey's MR).</param>
/// <param name="Length">Bytes.</param>
/// <param name="Lkey">The local key of the MR.</param>
public readonly record struct RnicSge(ulong Address, uint Length, uint Lkey)
{
    /// <summary>Bytes per SGE.</summary>
    public const int Size = 16;

    /// <summary>Offset of the address.</summary>
    public const int AddressOffset = 0x00;

    /// <summary>Offset of the length.</summary>
    public const int LengthOffset = 0x08;

    /// <summary>Offset of the lkey.</summary>
    public const int LkeyOffset = 0x0C;

    /// <summary>Decodes an SGE (exactly <see cref="Size"/> bytes).</summary>
    public static RnicSge Read(ReadOnlySpan<byte> sge)
    {
        LayoutCheck.Length("An SGE", Size, sge.Length);
        return new RnicSge(
            BinaryPrimitives.ReadUInt64LittleEndian(sge[AddressOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sge[LengthOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sge[LkeyOffset..]));
    }

    /// <summary>Encodes the SGE into <paramref name="sge"/> (exactly <see cref="Size"/> bytes).</summary>
    public void Write(Span<byte> sge)
    {
        LayoutCheck.Length("An SGE", Size, sge.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(sge[AddressOffset..], Address);
        BinaryPrimitives.WriteUInt32LittleEndian(sge[LengthOffset..], Length);
        BinaryPrimitives.WriteUInt32LittleEndian(sge[LkeyOffset..], Lkey);
    }
}
