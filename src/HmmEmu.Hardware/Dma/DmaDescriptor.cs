using System.Buffers.Binary;

namespace HmmEmu.Hardware.Dma;

/// <summary>
/// One DMA submission-ring entry, 32 bytes, little-endian:
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u64</term><description>Source device address (for <see cref="DmaFlags.Fill"/>: the fill byte in bits 7:0).</description></item>
/// <item><term>0x08 u64</term><description>Destination device address.</description></item>
/// <item><term>0x10 u32</term><description>Length in bytes, 1 to the engine's maximum.</description></item>
/// <item><term>0x14 u16</term><description>Flags (<see cref="DmaFlags"/>); reserved bits zero.</description></item>
/// <item><term>0x16 u16</term><description>Address-space id both addresses are translated in.</description></item>
/// <item><term>0x18 u64</term><description>Cookie: the driver's tag, echoed in the completion record.</description></item>
/// </list>
/// </summary>
/// <param name="Source">Source device address, or the fill byte.</param>
/// <param name="Destination">Destination device address.</param>
/// <param name="Length">Bytes to move.</param>
/// <param name="Flags">Operation and completion flags.</param>
/// <param name="Asid">Address-space id for translation.</param>
/// <param name="Cookie">Driver tag echoed in the completion.</param>
public readonly record struct DmaDescriptor(ulong Source, ulong Destination, uint Length, DmaFlags Flags, ushort Asid, ulong Cookie)
{
    /// <summary>Bytes per descriptor.</summary>
    public const int Size = 32;

    /// <summary>Offset of the source address.</summary>
    public const int SourceOffset = 0x00;

    /// <summary>Offset of the destination address.</summary>
    public const int DestinationOffset = 0x08;

    /// <summary>Offset of the length.</summary>
    public const int LengthOffset = 0x10;

    /// <summary>Offset of the flags.</summary>
    public const int FlagsOffset = 0x14;

    /// <summary>Offset of the address-space id.</summary>
    public const int AsidOffset = 0x16;

    /// <summary>Offset of the cookie.</summary>
    public const int CookieOffset = 0x18;

    /// <summary>Every defined flag bit; any other bit set makes the descriptor bad.</summary>
    public const DmaFlags DefinedFlags = DmaFlags.InterruptOnCompletion | DmaFlags.Fence | DmaFlags.Fill;

    /// <summary>A copy of <paramref name="length"/> bytes from <paramref name="source"/> to <paramref name="destination"/>.</summary>
    public static DmaDescriptor Copy(ulong source, ulong destination, uint length, ulong cookie, DmaFlags flags = DmaFlags.None, ushort asid = 0) =>
        new(source, destination, length, flags & ~DmaFlags.Fill, asid, cookie);

    /// <summary>A fill of <paramref name="length"/> bytes at <paramref name="destination"/> with <paramref name="value"/>.</summary>
    public static DmaDescriptor FillBytes(ulong destination, byte value, uint length, ulong cookie, DmaFlags flags = DmaFlags.None, ushort asid = 0) =>
        new(value, destination, length, flags | DmaFlags.Fill, asid, cookie);

    /// <summary>Decodes a descriptor from its 32-byte ring entry.</summary>
    public static DmaDescriptor Read(ReadOnlySpan<byte> entry)
    {
        if (entry.Length < Size)
            throw new ArgumentException($"A DMA descriptor is {Size} bytes; the span has {entry.Length}.", nameof(entry));
        return new DmaDescriptor(
            BinaryPrimitives.ReadUInt64LittleEndian(entry[SourceOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[DestinationOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[LengthOffset..]),
            (DmaFlags)BinaryPrimitives.ReadUInt16LittleEndian(entry[FlagsOffset..]),
            BinaryPrimitives.ReadUInt16LittleEndian(entry[AsidOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[CookieOffset..]));
    }

    /// <summary>Encodes the descriptor into its 32-byte ring entry (what a driver writes).</summary>
    public void Write(Span<byte> entry)
    {
        if (entry.Length < Size)
            throw new ArgumentException($"A DMA descriptor is {Size} bytes; the span has {entry.Length}.", nameof(entry));
        BinaryPrimitives.WriteUInt64LittleEndian(entry[SourceOffset..], Source);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[DestinationOffset..], Destination);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[LengthOffset..], Length);
        BinaryPrimitives.WriteUInt16LittleEndian(entry[FlagsOffset..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16LittleEndian(entry[AsidOffset..], Asid);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[CookieOffset..], Cookie);
    }
}
