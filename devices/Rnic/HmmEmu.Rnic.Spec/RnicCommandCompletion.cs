using System.Buffers.Binary;

namespace HmmEmu.Rnic;

/// <summary>
/// One command completion, 32 bytes, little-endian, written to slot i of the CMDQ_RESP_BASE array for command i:
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u8</term><description>Opcode of the command (echo).</description></item>
/// <item><term>0x01 u8</term><description>Status (<see cref="RnicCommandStatus"/>).</description></item>
/// <item><term>0x02 u16</term><description>Info: a small per-opcode output (QUERY_QP state, QUERY_CQ flags, QUERY_MR access, QUERY_PORT state).</description></item>
/// <item><term>0x04 u32</term><description>Token of the command (echo).</description></item>
/// <item><term>0x08 u32</term><description>Object: the PD, CQ, QP or MR index created; the PD for QUERY_MR.</description></item>
/// <item><term>0x0C u32</term><description>Key: the lkey/rkey of REG_MR and REG_MR_ODP, the key of QUERY_MR.</description></item>
/// <item><term>0x10 u64</term><description>Out0: per-opcode output (see <c>docs/rnic.md</c> §3).</description></item>
/// <item><term>0x18 u64</term><description>Out1: per-opcode output.</description></item>
/// </list>
/// </summary>
/// <param name="Opcode">The command's opcode.</param>
/// <param name="Status">How it ended.</param>
/// <param name="Info">Small output.</param>
/// <param name="Token">The command's token.</param>
/// <param name="ObjectNumber">The object created or reported.</param>
/// <param name="Key">The MR key.</param>
/// <param name="Out0">Output 0.</param>
/// <param name="Out1">Output 1.</param>
public readonly record struct RnicCommandCompletion(
    RnicCommandOpcode Opcode, RnicCommandStatus Status, ushort Info, uint Token, uint ObjectNumber, uint Key, ulong Out0 = 0, ulong Out1 = 0)
{
    /// <summary>Bytes per completion.</summary>
    public const int Size = 32;

    /// <summary>Offset of the opcode.</summary>
    public const int OpcodeOffset = 0x00;

    /// <summary>Offset of the status.</summary>
    public const int StatusOffset = 0x01;

    /// <summary>Offset of the info half-word.</summary>
    public const int InfoOffset = 0x02;

    /// <summary>Offset of the token.</summary>
    public const int TokenOffset = 0x04;

    /// <summary>Offset of the object number.</summary>
    public const int ObjectNumberOffset = 0x08;

    /// <summary>Offset of the key.</summary>
    public const int KeyOffset = 0x0C;

    /// <summary>Offset of out0.</summary>
    public const int Out0Offset = 0x10;

    /// <summary>Offset of out1.</summary>
    public const int Out1Offset = 0x18;

    /// <summary>QUERY_CQ info bit: the CQ overran and stopped.</summary>
    public const ushort CqInfoError = 1 << 0;

    /// <summary>QUERY_CQ info bit: the CQ is armed.</summary>
    public const ushort CqInfoArmed = 1 << 1;

    /// <summary>QUERY_CQ info bit: the arm is for solicited completions only.</summary>
    public const ushort CqInfoArmedSolicited = 1 << 2;

    /// <summary>QUERY_QP out1 bit: a requester page fault is pending.</summary>
    public const ulong QpRequesterFaultPending = 1UL << 0;

    /// <summary>QUERY_QP out1 bit: a responder page fault is pending.</summary>
    public const ulong QpResponderFaultPending = 1UL << 1;

    /// <summary>Whether the command succeeded.</summary>
    public bool IsOk => Status == RnicCommandStatus.Ok;

    /// <summary>Decodes a completion (exactly <see cref="Size"/> bytes).</summary>
    public static RnicCommandCompletion Read(ReadOnlySpan<byte> entry)
    {
        LayoutCheck.Length("An RNIC command completion", Size, entry.Length);
        return new RnicCommandCompletion(
            (RnicCommandOpcode)entry[OpcodeOffset],
            (RnicCommandStatus)entry[StatusOffset],
            BinaryPrimitives.ReadUInt16LittleEndian(entry[InfoOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[TokenOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[ObjectNumberOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[KeyOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[Out0Offset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[Out1Offset..]));
    }

    /// <summary>Encodes the completion into <paramref name="entry"/> (exactly <see cref="Size"/> bytes).</summary>
    public void Write(Span<byte> entry)
    {
        LayoutCheck.Length("An RNIC command completion", Size, entry.Length);
        entry[OpcodeOffset] = (byte)Opcode;
        entry[StatusOffset] = (byte)Status;
        BinaryPrimitives.WriteUInt16LittleEndian(entry[InfoOffset..], Info);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[TokenOffset..], Token);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[ObjectNumberOffset..], ObjectNumber);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[KeyOffset..], Key);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[Out0Offset..], Out0);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[Out1Offset..], Out1);
    }
}
