namespace HmmEmu.Simulation;

/// <summary>
/// Process-independent hashing (64-bit FNV-1a). <see cref="string.GetHashCode()"/> is randomised per process,
/// so anything that feeds a seed or a trace hash uses this instead.
/// </summary>
public static class StableHash
{
    /// <summary>The FNV-1a 64-bit offset basis, the hash of nothing.</summary>
    public const ulong Empty = 0xCBF29CE484222325UL;

    private const ulong Prime = 0x100000001B3UL;

    /// <summary>Hashes the UTF-16 code units of a string.</summary>
    public static ulong Of(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        ulong h = Empty;
        foreach (char c in text)
        {
            h = (h ^ (byte)c) * Prime;
            h = (h ^ (byte)(c >> 8)) * Prime;
        }
        return h;
    }

    /// <summary>Folds one 64-bit word into a running hash.</summary>
    public static ulong Fold(ulong hash, ulong word)
    {
        // Word-at-a-time FNV-1a with a final avalanche per word so that nearby values spread.
        hash ^= word * 0x9E3779B97F4A7C15UL;
        hash *= Prime;
        return hash ^ (hash >> 29);
    }
}
