using System.Buffers.Binary;

namespace HmmEmu.Gpu;

/// <summary>
/// One command-ring entry, 64 bytes, little-endian:
/// <list type="table">
/// <listheader><term>Offset</term><description>Field</description></listheader>
/// <item><term>0x00 u8</term><description>Opcode (<see cref="GpuOpcode"/>).</description></item>
/// <item><term>0x01 u8</term><description>Flags (<see cref="GpuCommandFlags"/>).</description></item>
/// <item><term>0x02 u16</term><description>Context (0..15).</description></item>
/// <item><term>0x04 u16</term><description>Kernel (<see cref="GpuKernel"/>; LAUNCH only, else 0).</description></item>
/// <item><term>0x06 u16</term><description>Reserved, zero.</description></item>
/// <item><term>0x08 u64</term><description>Fence bus address (8-byte aligned, system RAM), or 0 for no fence.</description></item>
/// <item><term>0x10 u64</term><description>Fence value, written to the fence address when the command finishes, ok or failed.</description></item>
/// <item><term>0x18 u64 ×5</term><description>Kernel arguments 0..4 (see <see cref="GpuKernel"/>).</description></item>
/// </list>
/// </summary>
/// <remarks>
/// Commands of one context run in ring order, one at a time; commands of different contexts run concurrently, so a
/// context stalled on a fault or stopped by an error does not hold the others up. A command that names a context
/// outside 0..15, or whose entry cannot be read, stops the ring (CMD_STATUS, <see cref="GpuDeviceError.CommandRingStopped"/>);
/// every other bad command fails its own context (<see cref="GpuContextError.BadCommand"/>) and still writes its fence.
/// </remarks>
/// <param name="Opcode">What to do.</param>
/// <param name="Flags">Options.</param>
/// <param name="Context">The context (address-space id) the command runs in.</param>
/// <param name="Kernel">The kernel of a LAUNCH.</param>
/// <param name="FenceAddress">Where to write <paramref name="FenceValue"/> when the command finishes (0: nowhere).</param>
/// <param name="FenceValue">The value to write.</param>
/// <param name="Arg0">Kernel argument 0.</param>
/// <param name="Arg1">Kernel argument 1.</param>
/// <param name="Arg2">Kernel argument 2.</param>
/// <param name="Arg3">Kernel argument 3.</param>
/// <param name="Arg4">Kernel argument 4.</param>
public readonly record struct GpuCommand(
    GpuOpcode Opcode, GpuCommandFlags Flags, ushort Context, GpuKernel Kernel, ulong FenceAddress, ulong FenceValue,
    ulong Arg0 = 0, ulong Arg1 = 0, ulong Arg2 = 0, ulong Arg3 = 0, ulong Arg4 = 0)
{
    /// <summary>Bytes per command.</summary>
    public const int Size = 64;

    /// <summary>Offset of the opcode.</summary>
    public const int OpcodeOffset = 0x00;

    /// <summary>Offset of the flags.</summary>
    public const int FlagsOffset = 0x01;

    /// <summary>Offset of the context.</summary>
    public const int ContextOffset = 0x02;

    /// <summary>Offset of the kernel.</summary>
    public const int KernelOffset = 0x04;

    /// <summary>Offset of the reserved half-word.</summary>
    public const int ReservedOffset = 0x06;

    /// <summary>Offset of the fence address.</summary>
    public const int FenceAddressOffset = 0x08;

    /// <summary>Offset of the fence value.</summary>
    public const int FenceValueOffset = 0x10;

    /// <summary>Offset of argument 0; argument n is 8·n bytes further.</summary>
    public const int ArgsOffset = 0x18;

    /// <summary>Kernel arguments per command.</summary>
    public const int ArgCount = 5;

    /// <summary>Every defined flag.</summary>
    public const GpuCommandFlags DefinedFlags = GpuCommandFlags.Interrupt;

    /// <summary>A LAUNCH of <paramref name="kernel"/> in <paramref name="context"/>.</summary>
    public static GpuCommand Launch(ushort context, GpuKernel kernel, ulong fenceAddress, ulong fenceValue,
        GpuCommandFlags flags, ulong arg0 = 0, ulong arg1 = 0, ulong arg2 = 0, ulong arg3 = 0, ulong arg4 = 0) =>
        new(GpuOpcode.Launch, flags, context, kernel, fenceAddress, fenceValue, arg0, arg1, arg2, arg3, arg4);

    /// <summary>A NOP in <paramref name="context"/> (a fence in order with the context's work).</summary>
    public static GpuCommand Nop(ushort context, ulong fenceAddress, ulong fenceValue, GpuCommandFlags flags) =>
        new(GpuOpcode.Nop, flags, context, GpuKernel.None, fenceAddress, fenceValue);

    /// <summary>Argument <paramref name="index"/> (0..4).</summary>
    public ulong Arg(int index) => index switch
    {
        0 => Arg0,
        1 => Arg1,
        2 => Arg2,
        3 => Arg3,
        4 => Arg4,
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "A command has arguments 0 to 4."),
    };

    /// <summary>Decodes an entry (exactly <see cref="Size"/> bytes). Never throws on content; the reserved field is not checked here.</summary>
    public static GpuCommand Read(ReadOnlySpan<byte> entry)
    {
        CheckLength(entry.Length);
        return new GpuCommand(
            (GpuOpcode)entry[OpcodeOffset],
            (GpuCommandFlags)entry[FlagsOffset],
            BinaryPrimitives.ReadUInt16LittleEndian(entry[ContextOffset..]),
            (GpuKernel)BinaryPrimitives.ReadUInt16LittleEndian(entry[KernelOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[FenceAddressOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[FenceValueOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[ArgsOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[(ArgsOffset + 8)..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[(ArgsOffset + 16)..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[(ArgsOffset + 24)..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[(ArgsOffset + 32)..]));
    }

    /// <summary>Whether the reserved half-word of <paramref name="entry"/> is zero (a device refuses the entry otherwise).</summary>
    public static bool ReservedIsZero(ReadOnlySpan<byte> entry)
    {
        CheckLength(entry.Length);
        return BinaryPrimitives.ReadUInt16LittleEndian(entry[ReservedOffset..]) == 0;
    }

    /// <summary>Encodes this command into <paramref name="entry"/> (exactly <see cref="Size"/> bytes).</summary>
    public void Write(Span<byte> entry)
    {
        CheckLength(entry.Length);
        entry[OpcodeOffset] = (byte)Opcode;
        entry[FlagsOffset] = (byte)Flags;
        BinaryPrimitives.WriteUInt16LittleEndian(entry[ContextOffset..], Context);
        BinaryPrimitives.WriteUInt16LittleEndian(entry[KernelOffset..], (ushort)Kernel);
        BinaryPrimitives.WriteUInt16LittleEndian(entry[ReservedOffset..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[FenceAddressOffset..], FenceAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[FenceValueOffset..], FenceValue);
        for (int i = 0; i < ArgCount; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(entry[(ArgsOffset + (8 * i))..], Arg(i));
    }

    private static void CheckLength(int length)
    {
        if (length != Size)
            throw new ArgumentException($"A GPU command is {Size} bytes; the span given is {length}. Pass exactly one entry.");
    }
}
