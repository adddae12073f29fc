using System.Buffers.Binary;

namespace HmmEmu.Rnic;

/// <summary>
/// One event-queue entry, 32 bytes, little-endian:
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u8</term><description>Type (<see cref="RnicEventType"/>).</description></item>
/// <item><term>0x01 u8</term><description>Fault side (<see cref="RnicFaultSide"/>; PageFault only, else 0).</description></item>
/// <item><term>0x02 u8</term><description>Fault access (<see cref="RnicFaultAccess"/>; PageFault only, else 0).</description></item>
/// <item><term>0x03 u8</term><description>Status: the <see cref="RnicWcStatus"/> behind a QP error event, else 0.</description></item>
/// <item><term>0x04 u32</term><description>Object: QPN (QP events, PageFault), CQN (Completion, CqErr), port (port events).</description></item>
/// <item><term>0x08 u64</term><description>Address: the first iova of the range that missed (PageFault).</description></item>
/// <item><term>0x10 u32</term><description>Length: bytes of the range that missed, from Address (PageFault).</description></item>
/// <item><term>0x14 u32</term><description>Key: the lkey (requester, or a responder's receive WQE) or rkey (responder) that missed.</description></item>
/// <item><term>0x18 u32</term><description>WQE index: the SQ ring index of the faulting WQE (requester PageFault), or of the WQE behind a QP error.</description></item>
/// <item><term>0x1C u32</term><description>Sequence number of the entry (counts every event written, from 1).</description></item>
/// </list>
/// </summary>
/// <remarks>
/// A QP side has at most one page fault pending; the range is at most the part of one SGE, or of one request, that
/// lies in one MR, so the driver can fault it in with one range walk.
/// </remarks>
/// <param name="Type">What happened.</param>
/// <param name="Side">Requester or responder (PageFault).</param>
/// <param name="Access">The faulting access (PageFault).</param>
/// <param name="Status">The completion status behind a QP error.</param>
/// <param name="ObjectNumber">QPN, CQN or port.</param>
/// <param name="Address">First iova of the missed range.</param>
/// <param name="Length">Bytes of the missed range.</param>
/// <param name="Key">The lkey or rkey.</param>
/// <param name="WqeIndex">The WQE's SQ ring index.</param>
/// <param name="Sequence">The entry's number.</param>
public readonly record struct RnicEqe(
    RnicEventType Type, RnicFaultSide Side, RnicFaultAccess Access, RnicWcStatus Status, uint ObjectNumber,
    ulong Address, uint Length, uint Key, uint WqeIndex, uint Sequence)
{
    /// <summary>Bytes per entry.</summary>
    public const int Size = 32;

    /// <summary>Offset of the type.</summary>
    public const int TypeOffset = 0x00;

    /// <summary>Offset of the fault side.</summary>
    public const int SideOffset = 0x01;

    /// <summary>Offset of the fault access.</summary>
    public const int AccessOffset = 0x02;

    /// <summary>Offset of the status.</summary>
    public const int StatusOffset = 0x03;

    /// <summary>Offset of the object number.</summary>
    public const int ObjectNumberOffset = 0x04;

    /// <summary>Offset of the address.</summary>
    public const int AddressOffset = 0x08;

    /// <summary>Offset of the length.</summary>
    public const int LengthOffset = 0x10;

    /// <summary>Offset of the key.</summary>
    public const int KeyOffset = 0x14;

    /// <summary>Offset of the WQE index.</summary>
    public const int WqeIndexOffset = 0x18;

    /// <summary>Offset of the sequence number.</summary>
    public const int SequenceOffset = 0x1C;

    /// <summary>A requester page fault of QP <paramref name="qpn"/> at SQ index <paramref name="wqeIndex"/>.</summary>
    public static RnicEqe RequesterFault(uint qpn, uint wqeIndex, uint lkey, ulong address, uint length, RnicFaultAccess access, uint sequence) =>
        new(RnicEventType.PageFault, RnicFaultSide.Requester, access, RnicWcStatus.Success, qpn, address, length, lkey, wqeIndex, sequence);

    /// <summary>A responder page fault of QP <paramref name="qpn"/> on <paramref name="rkey"/>.</summary>
    public static RnicEqe ResponderFault(uint qpn, uint rkey, ulong address, uint length, RnicFaultAccess access, uint sequence) =>
        new(RnicEventType.PageFault, RnicFaultSide.Responder, access, RnicWcStatus.Success, qpn, address, length, rkey, 0, sequence);

    /// <summary>Decodes an entry (exactly <see cref="Size"/> bytes).</summary>
    public static RnicEqe Read(ReadOnlySpan<byte> entry)
    {
        LayoutCheck.Length("An event-queue entry", Size, entry.Length);
        return new RnicEqe(
            (RnicEventType)entry[TypeOffset],
            (RnicFaultSide)entry[SideOffset],
            (RnicFaultAccess)entry[AccessOffset],
            (RnicWcStatus)entry[StatusOffset],
            BinaryPrimitives.ReadUInt32LittleEndian(entry[ObjectNumberOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[AddressOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[LengthOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[KeyOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[WqeIndexOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[SequenceOffset..]));
    }

    /// <summary>Encodes the entry into <paramref name="entry"/> (exactly <see cref="Size"/> bytes).</summary>
    public void Write(Span<byte> entry)
    {
        LayoutCheck.Length("An event-queue entry", Size, entry.Length);
        entry[TypeOffset] = (byte)Type;
        entry[SideOffset] = (byte)Side;
        entry[AccessOffset] = (byte)Access;
        entry[StatusOffset] = (byte)Status;
        BinaryPrimitives.WriteUInt32LittleEndian(entry[ObjectNumberOffset..], ObjectNumber);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[AddressOffset..], Address);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[LengthOffset..], Length);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[KeyOffset..], Key);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[WqeIndexOffset..], WqeIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[SequenceOffset..], Sequence);
    }
}
