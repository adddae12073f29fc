using System.Buffers.Binary;

namespace HmmEmu.Rnic;

/// <summary>
/// One command-queue entry, 64 bytes, little-endian:
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u8</term><description>Opcode (<see cref="RnicCommandOpcode"/>).</description></item>
/// <item><term>0x01 u8</term><description>Flags (<see cref="RnicCommandFlags"/>).</description></item>
/// <item><term>0x02 u16</term><description>Reserved, zero.</description></item>
/// <item><term>0x04 u32</term><description>Token: any value; echoed in the completion.</description></item>
/// <item><term>0x08 u64 ×7</term><description>Arguments 0..6 (per opcode; see <see cref="RnicCommandOpcode"/> and <c>docs/rnic.md</c> §3).</description></item>
/// </list>
/// </summary>
/// <remarks>
/// The device runs commands one at a time in queue order and writes each one's <see cref="RnicCommandCompletion"/> to
/// the slot with the same index in the CMDQ_RESP_BASE array before it advances CMDQ_HEAD. A bad command (unknown
/// opcode, bad arguments, dead object) completes with an error status and the queue goes on; only an entry that cannot
/// be read, a completion that cannot be written or a bad CMDQ_TAIL stops the queue.
/// </remarks>
/// <param name="Opcode">What to do.</param>
/// <param name="Flags">Options.</param>
/// <param name="Token">Echoed in the completion.</param>
/// <param name="Arg0">Argument 0.</param>
/// <param name="Arg1">Argument 1.</param>
/// <param name="Arg2">Argument 2.</param>
/// <param name="Arg3">Argument 3.</param>
/// <param name="Arg4">Argument 4.</param>
/// <param name="Arg5">Argument 5.</param>
/// <param name="Arg6">Argument 6.</param>
public readonly record struct RnicCommand(
    RnicCommandOpcode Opcode, RnicCommandFlags Flags, uint Token,
    ulong Arg0 = 0, ulong Arg1 = 0, ulong Arg2 = 0, ulong Arg3 = 0, ulong Arg4 = 0, ulong Arg5 = 0, ulong Arg6 = 0)
{
    /// <summary>Bytes per command.</summary>
    public const int Size = 64;

    /// <summary>Offset of the opcode.</summary>
    public const int OpcodeOffset = 0x00;

    /// <summary>Offset of the flags.</summary>
    public const int FlagsOffset = 0x01;

    /// <summary>Offset of the reserved half-word.</summary>
    public const int ReservedOffset = 0x02;

    /// <summary>Offset of the token.</summary>
    public const int TokenOffset = 0x04;

    /// <summary>Offset of argument 0; argument n is 8·n bytes further.</summary>
    public const int ArgsOffset = 0x08;

    /// <summary>Arguments per command.</summary>
    public const int ArgCount = 7;

    /// <summary>Every defined flag.</summary>
    public const RnicCommandFlags DefinedFlags = RnicCommandFlags.Interrupt;

    /// <summary>RESUME arg2 bit 0: fail the faulting operation instead of retrying it.</summary>
    public const ulong ResumeError = 1;

    /// <summary>A NOP.</summary>
    public static RnicCommand Nop(uint token, RnicCommandFlags flags = RnicCommandFlags.None) =>
        new(RnicCommandOpcode.Nop, flags, token);

    /// <summary>ALLOC_PD for user context <paramref name="context"/>.</summary>
    public static RnicCommand AllocPd(uint token, uint context) => new(RnicCommandOpcode.AllocPd, 0, token, context);

    /// <summary>DEALLOC_PD of <paramref name="pdn"/>.</summary>
    public static RnicCommand DeallocPd(uint token, uint pdn) => new(RnicCommandOpcode.DeallocPd, 0, token, pdn);

    /// <summary>REG_MR (pinned, <paramref name="onDemand"/> false) or REG_MR_ODP of [iova, iova + length) with an MTT
    /// of <paramref name="mttEntries"/> entries at bus address <paramref name="mttAddress"/>.</summary>
    public static RnicCommand RegMr(uint token, uint pdn, ulong iova, ulong length, RnicAccessFlags access,
        ulong mttAddress, ulong mttEntries, bool onDemand) =>
        new(onDemand ? RnicCommandOpcode.RegMrOdp : RnicCommandOpcode.RegMr, 0, token, pdn, iova, length, (ulong)access, mttAddress, mttEntries);

    /// <summary>DEREG_MR of <paramref name="key"/>.</summary>
    public static RnicCommand DeregMr(uint token, RnicKey key) => new(RnicCommandOpcode.DeregMr, 0, token, key.Value);

    /// <summary>CREATE_CQ of <paramref name="entries"/> CQEs at <paramref name="ringAddress"/> for user context <paramref name="context"/>.</summary>
    public static RnicCommand CreateCq(uint token, uint context, ulong ringAddress, uint entries) =>
        new(RnicCommandOpcode.CreateCq, 0, token, context, ringAddress, entries);

    /// <summary>DESTROY_CQ of <paramref name="cqn"/>.</summary>
    public static RnicCommand DestroyCq(uint token, uint cqn) => new(RnicCommandOpcode.DestroyCq, 0, token, cqn);

    /// <summary>CREATE_QP (RC) in PD <paramref name="pdn"/> for user context <paramref name="context"/>.</summary>
    public static RnicCommand CreateQp(uint token, uint pdn, uint context, uint sendCqn, uint recvCqn,
        ulong sqAddress, uint sqEntries, ulong rqAddress, uint rqEntries) =>
        new(RnicCommandOpcode.CreateQp, 0, token, pdn, context, sendCqn, recvCqn, sqAddress, rqAddress, ((ulong)rqEntries << 32) | sqEntries);

    /// <summary>MODIFY_QP of <paramref name="qpn"/> with the attribute block at <paramref name="attributesAddress"/>.</summary>
    public static RnicCommand ModifyQp(uint token, uint qpn, RnicQpAttrMask mask, ulong attributesAddress) =>
        new(RnicCommandOpcode.ModifyQp, 0, token, qpn, (ulong)mask, attributesAddress);

    /// <summary>DESTROY_QP of <paramref name="qpn"/>.</summary>
    public static RnicCommand DestroyQp(uint token, uint qpn) => new(RnicCommandOpcode.DestroyQp, 0, token, qpn);

    /// <summary>INVALIDATE_MTT of <paramref name="count"/> entries of <paramref name="key"/>'s MTT from <paramref name="firstEntry"/>.</summary>
    public static RnicCommand InvalidateMtt(uint token, RnicKey key, ulong firstEntry, ulong count) =>
        new(RnicCommandOpcode.InvalidateMtt, 0, token, key.Value, firstEntry, count);

    /// <summary>RESUME of <paramref name="qpn"/>'s <paramref name="side"/>, retrying the access or, with <paramref name="error"/>, failing it.</summary>
    public static RnicCommand Resume(uint token, uint qpn, RnicFaultSide side, bool error) =>
        new(RnicCommandOpcode.Resume, 0, token, qpn, (ulong)side, error ? ResumeError : 0);

    /// <summary>QUERY_QP of <paramref name="qpn"/> into the attribute block at <paramref name="attributesAddress"/>.</summary>
    public static RnicCommand QueryQp(uint token, uint qpn, ulong attributesAddress) =>
        new(RnicCommandOpcode.QueryQp, 0, token, qpn, attributesAddress);

    /// <summary>QUERY_CQ of <paramref name="cqn"/>.</summary>
    public static RnicCommand QueryCq(uint token, uint cqn) => new(RnicCommandOpcode.QueryCq, 0, token, cqn);

    /// <summary>QUERY_MR of <paramref name="key"/>.</summary>
    public static RnicCommand QueryMr(uint token, RnicKey key) => new(RnicCommandOpcode.QueryMr, 0, token, key.Value);

    /// <summary>QUERY_PORT.</summary>
    public static RnicCommand QueryPort(uint token) => new(RnicCommandOpcode.QueryPort, 0, token);

    /// <summary>Argument <paramref name="index"/> (0..6).</summary>
    public ulong Arg(int index) => index switch
    {
        0 => Arg0,
        1 => Arg1,
        2 => Arg2,
        3 => Arg3,
        4 => Arg4,
        5 => Arg5,
        6 => Arg6,
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "A command has arguments 0 to 6."),
    };

    /// <summary>Decodes an entry (exactly <see cref="Size"/> bytes). Never throws on content; the reserved field is not checked here.</summary>
    public static RnicCommand Read(ReadOnlySpan<byte> entry)
    {
        LayoutCheck.Length("An RNIC command", Size, entry.Length);
        return new RnicCommand(
            (RnicCommandOpcode)entry[OpcodeOffset],
            (RnicCommandFlags)entry[FlagsOffset],
            BinaryPrimitives.ReadUInt32LittleEndian(entry[TokenOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[ArgsOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[(ArgsOffset + 8)..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[(ArgsOffset + 16)..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[(ArgsOffset + 24)..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[(ArgsOffset + 32)..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[(ArgsOffset + 40)..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[(ArgsOffset + 48)..]));
    }

    /// <summary>Whether the reserved half-word of <paramref name="entry"/> is zero (the command completes BadOpcode otherwise).</summary>
    public static bool ReservedIsZero(ReadOnlySpan<byte> entry)
    {
        LayoutCheck.Length("An RNIC command", Size, entry.Length);
        return BinaryPrimitives.ReadUInt16LittleEndian(entry[ReservedOffset..]) == 0;
    }

    /// <summary>Encodes this command into <paramref name="entry"/> (exactly <see cref="Size"/> bytes).</summary>
    public void Write(Span<byte> entry)
    {
        LayoutCheck.Length("An RNIC command", Size, entry.Length);
        entry[OpcodeOffset] = (byte)Opcode;
        entry[FlagsOffset] = (byte)Flags;
        BinaryPrimitives.WriteUInt16LittleEndian(entry[ReservedOffset..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[TokenOffset..], Token);
        for (int i = 0; i < ArgCount; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(entry[(ArgsOffset + (8 * i))..], Arg(i));
    }
}
