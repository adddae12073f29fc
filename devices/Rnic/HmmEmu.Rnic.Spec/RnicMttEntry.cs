using System.Buffers.Binary;

namespace HmmEmu.Rnic;

/// <summary>
/// One MTT (memory translation table) entry, 8 bytes, little-endian: VALID [0], WRITABLE [1], reserved [11:2] (zero),
/// page bus address [63:12]. Entry i of an MR translates the i-th 4 KiB page of the MR, counted from the page holding
/// its iova (<see cref="IndexOf"/>). The MTT lives in host memory the driver allocates; the device reads an entry on a
/// translation-cache miss and never caches an invalid one.
/// </summary>
/// <remarks>
/// The driver may turn an entry valid by writing it directly (an ODP fault fill); turning a valid entry invalid or
/// changing its address must go through INVALIDATE_MTT, because the device may hold the old translation. An ODP MR's
/// entries start invalid (REG_MR_ODP zeroes them); a pinned MR's must all be valid before REG_MR.
/// </remarks>
/// <param name="Value">The raw 64-bit entry.</param>
public readonly record struct RnicMttEntry(ulong Value)
{
    /// <summary>Bytes per entry.</summary>
    public const int Size = 8;

    /// <summary>Bytes per page an entry maps.</summary>
    public const ulong PageSize = 4096;

    /// <summary>log2 of <see cref="PageSize"/>.</summary>
    public const int PageShift = 12;

    /// <summary>VALID: the entry translates.</summary>
    public const ulong ValidBit = 1UL << 0;

    /// <summary>WRITABLE: the device may write the page (ODP: the page was faulted in writable).</summary>
    public const ulong WritableBit = 1UL << 1;

    /// <summary>The page bus address field.</summary>
    public const ulong AddressMask = ~(PageSize - 1);

    /// <summary>Bits that must be zero.</summary>
    public const ulong ReservedMask = (PageSize - 1) & ~(ValidBit | WritableBit);

    /// <summary>The invalid entry (all zero).</summary>
    public static RnicMttEntry Invalid => default;

    /// <summary>Whether the entry translates.</summary>
    public bool IsValid => (Value & ValidBit) != 0;

    /// <summary>Whether the device may write through the entry.</summary>
    public bool IsWritable => (Value & WritableBit) != 0;

    /// <summary>The page's bus address.</summary>
    public ulong PageAddress => Value & AddressMask;

    /// <summary>Whether the reserved bits are zero (the device treats the entry as invalid otherwise).</summary>
    public bool ReservedIsZero => (Value & ReservedMask) == 0;

    /// <summary>A valid entry for the page at <paramref name="pageAddress"/> (4 KiB aligned).</summary>
    public static RnicMttEntry Create(ulong pageAddress, bool writable)
    {
        if ((pageAddress & (PageSize - 1)) != 0)
            throw new ArgumentException($"An MTT entry maps a 4 KiB page; address 0x{pageAddress:X} is not page-aligned.", nameof(pageAddress));
        return new RnicMttEntry(pageAddress | ValidBit | (writable ? WritableBit : 0));
    }

    /// <summary>The number of MTT entries an MR of <paramref name="length"/> bytes at <paramref name="iova"/> needs (0 for length 0).</summary>
    public static ulong PagesSpanned(ulong iova, ulong length) =>
        length == 0 ? 0 : ((iova + length - 1) >> PageShift) - (iova >> PageShift) + 1;

    /// <summary>The MTT index translating <paramref name="iova"/> in an MR registered at <paramref name="mrIova"/> (iova ≥ mrIova).</summary>
    public static ulong IndexOf(ulong mrIova, ulong iova) => (iova >> PageShift) - (mrIova >> PageShift);

    /// <summary>Decodes an entry (exactly <see cref="Size"/> bytes).</summary>
    public static RnicMttEntry Read(ReadOnlySpan<byte> entry)
    {
        LayoutCheck.Length("An MTT entry", Size, entry.Length);
        return new RnicMttEntry(BinaryPrimitives.ReadUInt64LittleEndian(entry));
    }

    /// <summary>Encodes the entry into <paramref name="entry"/> (exactly <see cref="Size"/> bytes).</summary>
    public void Write(Span<byte> entry)
    {
        LayoutCheck.Length("An MTT entry", Size, entry.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(entry, Value);
    }
}
