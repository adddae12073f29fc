using System.Buffers.Binary;

namespace HmmEmu.Gpu;

/// <summary>
/// One fault-buffer record, 32 bytes, little-endian:
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u64</term><description>Faulting device virtual address (the byte the access started at).</description></item>
/// <item><term>0x08 u64</term><description>Timestamp: the device's virtual time in ns when the fault was taken.</description></item>
/// <item><term>0x10 u16</term><description>Context (address-space id).</description></item>
/// <item><term>0x12 u8</term><description>Access (<see cref="GpuFaultAccess"/>).</description></item>
/// <item><term>0x13 u8</term><description>Engine (<see cref="GpuEngineId"/>).</description></item>
/// <item><term>0x14 u8</term><description>Reason (<see cref="GpuFaultReason"/>).</description></item>
/// <item><term>0x15 u8 ×3</term><description>Reserved, zero.</description></item>
/// <item><term>0x18 u32</term><description>Sequence number of the record (counts every fault the device took, from 1).</description></item>
/// <item><term>0x1C u32</term><description>Reserved, zero.</description></item>
/// </list>
/// </summary>
/// <remarks>
/// Only replayable faults are recorded: a missing or read-only leaf. The engine that took one stalls on it until the
/// driver writes FAULT_REPLAY (the engine retries the access and may fault again) or FAULT_CANCEL with the context.
/// An address outside the 48-bit space or a malformed table fails the context at once instead.
/// </remarks>
/// <param name="Address">The faulting address.</param>
/// <param name="Timestamp">Virtual ns when the fault was taken.</param>
/// <param name="Context">The context.</param>
/// <param name="Access">Read, write or atomic.</param>
/// <param name="Engine">The engine.</param>
/// <param name="Reason">Not present or permission.</param>
/// <param name="Sequence">The record's number.</param>
public readonly record struct GpuFaultRecord(
    ulong Address, ulong Timestamp, ushort Context, GpuFaultAccess Access, GpuEngineId Engine, GpuFaultReason Reason, uint Sequence)
{
    /// <summary>Bytes per record.</summary>
    public const int Size = 32;

    /// <summary>Offset of the address.</summary>
    public const int AddressOffset = 0x00;

    /// <summary>Offset of the timestamp.</summary>
    public const int TimestampOffset = 0x08;

    /// <summary>Offset of the context.</summary>
    public const int ContextOffset = 0x10;

    /// <summary>Offset of the access byte.</summary>
    public const int AccessOffset = 0x12;

    /// <summary>Offset of the engine byte.</summary>
    public const int EngineOffset = 0x13;

    /// <summary>Offset of the reason byte.</summary>
    public const int ReasonOffset = 0x14;

    /// <summary>Offset of the sequence number.</summary>
    public const int SequenceOffset = 0x18;

    /// <summary>Decodes a record (exactly <see cref="Size"/> bytes).</summary>
    public static GpuFaultRecord Read(ReadOnlySpan<byte> record)
    {
        CheckLength(record.Length);
        return new GpuFaultRecord(
            BinaryPrimitives.ReadUInt64LittleEndian(record[AddressOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(record[TimestampOffset..]),
            BinaryPrimitives.ReadUInt16LittleEndian(record[ContextOffset..]),
            (GpuFaultAccess)record[AccessOffset],
            (GpuEngineId)record[EngineOffset],
            (GpuFaultReason)record[ReasonOffset],
            BinaryPrimitives.ReadUInt32LittleEndian(record[SequenceOffset..]));
    }

    /// <summary>Encodes the record into <paramref name="record"/> (exactly <see cref="Size"/> bytes), reserved bytes zero.</summary>
    public void Write(Span<byte> record)
    {
        CheckLength(record.Length);
        record.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(record[AddressOffset..], Address);
        BinaryPrimitives.WriteUInt64LittleEndian(record[TimestampOffset..], Timestamp);
        BinaryPrimitives.WriteUInt16LittleEndian(record[ContextOffset..], Context);
        record[AccessOffset] = (byte)Access;
        record[EngineOffset] = (byte)Engine;
        record[ReasonOffset] = (byte)Reason;
        BinaryPrimitives.WriteUInt32LittleEndian(record[SequenceOffset..], Sequence);
    }

    private static void CheckLength(int length)
    {
        if (length != Size)
            throw new ArgumentException($"A GPU fault record is {Size} bytes; the span given is {length}. Pass exactly one record.");
    }
}
