namespace HmmEmu.Rnic;

/// <summary>
/// An MR key (lkey and rkey are the same value): MR table index [31:8], key byte [7:0], as rxe and mlx5 build them.
/// The device gives every registration on an index a key byte different from the previous one on that index
/// (<see cref="NextKeyByte"/>), so a stale key held by a peer stops matching once the MR is deregistered and the index
/// is reused. Index 0 is never allocated, so key 0 (a zeroed SGE) never resolves.
/// </summary>
/// <param name="Value">The 32-bit key.</param>
public readonly record struct RnicKey(uint Value)
{
    /// <summary>Largest MR index (24 bits).</summary>
    public const uint MaxIndex = 0xFF_FFFF;

    /// <summary>Bits the index is shifted by.</summary>
    public const int IndexShift = 8;

    /// <summary>The MR table index.</summary>
    public uint Index => Value >> IndexShift;

    /// <summary>The key byte.</summary>
    public byte KeyByte => (byte)Value;

    /// <summary>The key of <paramref name="index"/> with <paramref name="keyByte"/>.</summary>
    public static RnicKey Compose(uint index, byte keyByte)
    {
        if (index > MaxIndex)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"An MR index is 24-bit (at most 0x{MaxIndex:X}).");
        return new RnicKey((index << IndexShift) | keyByte);
    }

    /// <summary>The key byte the device gives the next registration on an index whose last key byte was <paramref name="previous"/>.</summary>
    public static byte NextKeyByte(byte previous) => unchecked((byte)(previous + 1));

    /// <summary>The key the next registration on this key's index receives.</summary>
    public RnicKey Reregistered() => Compose(Index, NextKeyByte(KeyByte));

    /// <summary>The key in hex, as drivers print it.</summary>
    public override string ToString() => $"0x{Value:X8}";
}
