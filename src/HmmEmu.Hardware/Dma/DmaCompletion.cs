using System.Buffers.Binary;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Hardware.Dma;

/// <summary>
/// One DMA completion-ring record, 32 bytes, little-endian:
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u64</term><description>Cookie of the descriptor (0 if its entry could not be read).</description></item>
/// <item><term>0x08 u32</term><description>Submission-ring index of the descriptor, with wrap bit.</description></item>
/// <item><term>0x0C u8</term><description>Status (<see cref="DmaStatus"/>).</description></item>
/// <item><term>0x0D u8</term><description>Faulting access: 1 = reading the source, 2 = writing the destination, 0 = none.</description></item>
/// <item><term>0x0E u16</term><description>Reserved, zero.</description></item>
/// <item><term>0x10 u64</term><description>Bytes moved before the descriptor finished or failed.</description></item>
/// <item><term>0x18 u64</term><description>Faulting device address (0 when there was no fault).</description></item>
/// </list>
/// </summary>
/// <param name="Cookie">The descriptor's cookie.</param>
/// <param name="Index">The descriptor's submission-ring index.</param>
/// <param name="Status">How it ended.</param>
/// <param name="FaultAccess">Which side faulted (<see cref="Access.Read"/>: source, <see cref="Access.Write"/>: destination), or 0.</param>
/// <param name="BytesDone">Bytes moved.</param>
/// <param name="FaultAddress">The device address that faulted.</param>
public readonly record struct DmaCompletion(ulong Cookie, uint Index, DmaStatus Status, Access FaultAccess, ulong BytesDone, ulong FaultAddress)
{
    /// <summary>Bytes per record.</summary>
    public const int Size = 32;

    /// <summary>Offset of the cookie.</summary>
    public const int CookieOffset = 0x00;

    /// <summary>Offset of the descriptor index.</summary>
    public const int IndexOffset = 0x08;

    /// <summary>Offset of the status byte.</summary>
    public const int StatusOffset = 0x0C;

    /// <summary>Offset of the faulting-access byte.</summary>
    public const int FaultAccessOffset = 0x0D;

    /// <summary>Offset of the byte count.</summary>
    public const int BytesDoneOffset = 0x10;

    /// <summary>Offset of the fault address.</summary>
    public const int FaultAddressOffset = 0x18;

    /// <summary>Decodes a record from its 32-byte ring entry (what a driver reads).</summary>
    public static DmaCompletion Read(ReadOnlySpan<byte> record)
    {
        if (record.Length < Size)
            throw new ArgumentException($"A DMA completion record is {Size} bytes; the span has {record.Length}.", nameof(record));
        return new DmaCompletion(
            BinaryPrimitives.ReadUInt64LittleEndian(record[CookieOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(record[IndexOffset..]),
            (DmaStatus)record[StatusOffset],
            (Access)record[FaultAccessOffset],
            BinaryPrimitives.ReadUInt64LittleEndian(record[BytesDoneOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(record[FaultAddressOffset..]));
    }

    /// <summary>Encodes the record into its 32-byte ring entry.</summary>
    public void Write(Span<byte> record)
    {
        if (record.Length < Size)
            throw new ArgumentException($"A DMA completion record is {Size} bytes; the span has {record.Length}.", nameof(record));
        BinaryPrimitives.WriteUInt64LittleEndian(record[CookieOffset..], Cookie);
        BinaryPrimitives.WriteUInt32LittleEndian(record[IndexOffset..], Index);
        record[StatusOffset] = (byte)Status;
        record[FaultAccessOffset] = (byte)FaultAccess;
        BinaryPrimitives.WriteUInt16LittleEndian(record[(FaultAccessOffset + 1)..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(record[BytesDoneOffset..], BytesDone);
        BinaryPrimitives.WriteUInt64LittleEndian(record[FaultAddressOffset..], FaultAddress);
    }
}
