using System.Buffers.Binary;

namespace HmmEmu.Rnic;

/// <summary>
/// A QP attribute block, 64 bytes, little-endian, in host memory: MODIFY_QP reads it (fields outside the mask are
/// ignored), QUERY_QP writes it (every field):
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u8</term><description>State (<see cref="RnicQpState"/>; mask State).</description></item>
/// <item><term>0x01 u8</term><description>CurState (mask CurState).</description></item>
/// <item><term>0x02 u8</term><description>Path MTU (<see cref="RnicMtu"/>; mask PathMtu).</description></item>
/// <item><term>0x03 u8</term><description>Port, 1 (mask Port).</description></item>
/// <item><term>0x04 u16</term><description>P_Key index, 0 (mask PkeyIndex).</description></item>
/// <item><term>0x06 u8</term><description>Min RNR timer code, 0..31 (mask MinRnrTimer).</description></item>
/// <item><term>0x07 u8</term><description>Timeout code, 0..31 (mask Timeout).</description></item>
/// <item><term>0x08 u32</term><description>QP access flags: RemoteWrite, RemoteRead, RemoteAtomic (mask AccessFlags).</description></item>
/// <item><term>0x0C u32</term><description>Destination QPN, 24-bit (mask DestQpn).</description></item>
/// <item><term>0x10 u32</term><description>RQ PSN, 24-bit (mask RqPsn).</description></item>
/// <item><term>0x14 u32</term><description>SQ PSN, 24-bit (mask SqPsn).</description></item>
/// <item><term>0x18 u32</term><description>AV: the peer port's PORT_ADDRESS (mask Av).</description></item>
/// <item><term>0x1C u32</term><description>Q_Key (mask Qkey; refused for RC).</description></item>
/// <item><term>0x20 u8</term><description>Retry count, 0..7 (mask RetryCnt).</description></item>
/// <item><term>0x21 u8</term><description>RNR retry, 0..7, 7 = without limit (mask RnrRetry).</description></item>
/// <item><term>0x22 u8</term><description>Max RD atomic as initiator (mask MaxQpRdAtomic).</description></item>
/// <item><term>0x23 u8</term><description>Max RD atomic as responder (mask MaxDestRdAtomic).</description></item>
/// <item><term>0x24 u8</term><description>EnSqdAsyncNotify, 0 or 1 (mask EnSqdAsyncNotify).</description></item>
/// <item><term>0x25 u8</term><description>SQ draining, QUERY_QP output only (1 while SQD still has WQEs outstanding).</description></item>
/// <item><term>0x26 u8 ×26</term><description>Reserved, zero.</description></item>
/// </list>
/// </summary>
/// <param name="State">Target or current state.</param>
/// <param name="CurState">Expected current state.</param>
/// <param name="PathMtu">Path MTU.</param>
/// <param name="Port">Port number.</param>
/// <param name="PkeyIndex">P_Key index.</param>
/// <param name="MinRnrTimer">RNR timer code.</param>
/// <param name="Timeout">ACK timeout code.</param>
/// <param name="AccessFlags">Remote rights of the QP.</param>
/// <param name="DestQpn">Peer QPN.</param>
/// <param name="RqPsn">Responder's first PSN.</param>
/// <param name="SqPsn">Requester's first PSN.</param>
/// <param name="Av">Peer port address.</param>
/// <param name="Qkey">Q_Key.</param>
/// <param name="RetryCnt">Transport retries.</param>
/// <param name="RnrRetry">RNR retries.</param>
/// <param name="MaxRdAtomic">Initiator depth.</param>
/// <param name="MaxDestRdAtomic">Responder resources.</param>
/// <param name="EnSqdAsyncNotify">Notify when SQD drains.</param>
/// <param name="SqDraining">SQD still draining.</param>
public readonly record struct RnicQpAttributes(
    RnicQpState State = RnicQpState.Reset, RnicQpState CurState = RnicQpState.Reset, RnicMtu PathMtu = RnicMtu.Mtu4096,
    byte Port = 1, ushort PkeyIndex = 0, byte MinRnrTimer = 0, byte Timeout = 0, RnicAccessFlags AccessFlags = RnicAccessFlags.None,
    uint DestQpn = 0, uint RqPsn = 0, uint SqPsn = 0, uint Av = 0, uint Qkey = 0, byte RetryCnt = 0, byte RnrRetry = 0,
    byte MaxRdAtomic = 0, byte MaxDestRdAtomic = 0, bool EnSqdAsyncNotify = false, bool SqDraining = false)
{
    /// <summary>Bytes per block.</summary>
    public const int Size = 64;

    /// <summary>Offset of the state.</summary>
    public const int StateOffset = 0x00;

    /// <summary>Offset of the current state.</summary>
    public const int CurStateOffset = 0x01;

    /// <summary>Offset of the path MTU.</summary>
    public const int PathMtuOffset = 0x02;

    /// <summary>Offset of the port.</summary>
    public const int PortOffset = 0x03;

    /// <summary>Offset of the P_Key index.</summary>
    public const int PkeyIndexOffset = 0x04;

    /// <summary>Offset of the min RNR timer.</summary>
    public const int MinRnrTimerOffset = 0x06;

    /// <summary>Offset of the timeout.</summary>
    public const int TimeoutOffset = 0x07;

    /// <summary>Offset of the access flags.</summary>
    public const int AccessFlagsOffset = 0x08;

    /// <summary>Offset of the destination QPN.</summary>
    public const int DestQpnOffset = 0x0C;

    /// <summary>Offset of the RQ PSN.</summary>
    public const int RqPsnOffset = 0x10;

    /// <summary>Offset of the SQ PSN.</summary>
    public const int SqPsnOffset = 0x14;

    /// <summary>Offset of the AV.</summary>
    public const int AvOffset = 0x18;

    /// <summary>Offset of the Q_Key.</summary>
    public const int QkeyOffset = 0x1C;

    /// <summary>Offset of the retry count.</summary>
    public const int RetryCntOffset = 0x20;

    /// <summary>Offset of the RNR retry.</summary>
    public const int RnrRetryOffset = 0x21;

    /// <summary>Offset of max RD atomic (initiator).</summary>
    public const int MaxRdAtomicOffset = 0x22;

    /// <summary>Offset of max RD atomic (responder).</summary>
    public const int MaxDestRdAtomicOffset = 0x23;

    /// <summary>Offset of EnSqdAsyncNotify.</summary>
    public const int EnSqdAsyncNotifyOffset = 0x24;

    /// <summary>Offset of SQ draining.</summary>
    public const int SqDrainingOffset = 0x25;

    /// <summary>Offset of the reserved tail.</summary>
    public const int ReservedOffset = 0x26;

    /// <summary>RNR retry value meaning "retry without limit".</summary>
    public const byte RnrRetryInfinite = 7;

    /// <summary>Mask of a PSN or QPN (24 bits).</summary>
    public const uint Mask24 = 0xFF_FFFF;

    /// <summary>Decodes a block (exactly <see cref="Size"/> bytes).</summary>
    public static RnicQpAttributes Read(ReadOnlySpan<byte> block)
    {
        LayoutCheck.Length("A QP attribute block", Size, block.Length);
        return new RnicQpAttributes(
            (RnicQpState)block[StateOffset],
            (RnicQpState)block[CurStateOffset],
            (RnicMtu)block[PathMtuOffset],
            block[PortOffset],
            BinaryPrimitives.ReadUInt16LittleEndian(block[PkeyIndexOffset..]),
            block[MinRnrTimerOffset],
            block[TimeoutOffset],
            (RnicAccessFlags)BinaryPrimitives.ReadUInt32LittleEndian(block[AccessFlagsOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(block[DestQpnOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(block[RqPsnOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(block[SqPsnOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(block[AvOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(block[QkeyOffset..]),
            block[RetryCntOffset],
            block[RnrRetryOffset],
            block[MaxRdAtomicOffset],
            block[MaxDestRdAtomicOffset],
            block[EnSqdAsyncNotifyOffset] != 0,
            block[SqDrainingOffset] != 0);
    }

    /// <summary>Encodes the block into <paramref name="block"/> (exactly <see cref="Size"/> bytes), reserved bytes zero.</summary>
    public void Write(Span<byte> block)
    {
        LayoutCheck.Length("A QP attribute block", Size, block.Length);
        block.Clear();
        block[StateOffset] = (byte)State;
        block[CurStateOffset] = (byte)CurState;
        block[PathMtuOffset] = (byte)PathMtu;
        block[PortOffset] = Port;
        BinaryPrimitives.WriteUInt16LittleEndian(block[PkeyIndexOffset..], PkeyIndex);
        block[MinRnrTimerOffset] = MinRnrTimer;
        block[TimeoutOffset] = Timeout;
        BinaryPrimitives.WriteUInt32LittleEndian(block[AccessFlagsOffset..], (uint)AccessFlags);
        BinaryPrimitives.WriteUInt32LittleEndian(block[DestQpnOffset..], DestQpn);
        BinaryPrimitives.WriteUInt32LittleEndian(block[RqPsnOffset..], RqPsn);
        BinaryPrimitives.WriteUInt32LittleEndian(block[SqPsnOffset..], SqPsn);
        BinaryPrimitives.WriteUInt32LittleEndian(block[AvOffset..], Av);
        BinaryPrimitives.WriteUInt32LittleEndian(block[QkeyOffset..], Qkey);
        block[RetryCntOffset] = RetryCnt;
        block[RnrRetryOffset] = RnrRetry;
        block[MaxRdAtomicOffset] = MaxRdAtomic;
        block[MaxDestRdAtomicOffset] = MaxDestRdAtomic;
        block[EnSqdAsyncNotifyOffset] = EnSqdAsyncNotify ? (byte)1 : (byte)0;
        block[SqDrainingOffset] = SqDraining ? (byte)1 : (byte)0;
    }
}
