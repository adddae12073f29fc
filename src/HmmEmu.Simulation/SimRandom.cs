namespace HmmEmu.Simulation;

/// <summary>
/// A seeded pseudo-random source (xoshiro256**, seeded through SplitMix64). Unlike <see cref="System.Random"/>
/// its sequence for a given seed is fixed forever, so a simulation seed replays on any runtime version.
/// </summary>
/// <remarks>Not thread-safe: each simulated component owns its own stream (see <see cref="Fork"/>).</remarks>
public sealed class SimRandom
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Creates a stream from a 64-bit seed.</summary>
    public SimRandom(ulong seed)
    {
        Seed = seed;
        ulong x = seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    /// <summary>The seed this stream was created from.</summary>
    public ulong Seed { get; }

    /// <summary>
    /// Derives an independent stream for a named component. The derived seed depends only on this stream's seed
    /// and the name, so adding a component never perturbs the draws of another.
    /// </summary>
    public SimRandom Fork(string component)
    {
        ArgumentNullException.ThrowIfNull(component);
        // Folded, not XORed: an XOR would cancel when the same name is forked twice in a row.
        return new SimRandom(StableHash.Fold(StableHash.Fold(StableHash.Empty, Seed), StableHash.Of(component)));
    }

    /// <summary>Returns the next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Returns a value uniformly distributed in [0, <paramref name="exclusiveMax"/>).</summary>
    public ulong NextUInt64(ulong exclusiveMax)
    {
        if (exclusiveMax == 0)
            throw new ArgumentOutOfRangeException(nameof(exclusiveMax), "The upper bound must be at least 1.");
        // Lemire's nearly-divisionless method: unbiased and deterministic.
        UInt128 m = (UInt128)NextUInt64() * exclusiveMax;
        ulong low = (ulong)m;
        if (low < exclusiveMax)
        {
            ulong threshold = (0 - exclusiveMax) % exclusiveMax;
            while (low < threshold)
            {
                m = (UInt128)NextUInt64() * exclusiveMax;
                low = (ulong)m;
            }
        }
        return (ulong)(m >> 64);
    }

    /// <summary>Returns a value uniformly distributed in [0, <paramref name="exclusiveMax"/>).</summary>
    public int NextInt(int exclusiveMax)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(exclusiveMax);
        return (int)NextUInt64((ulong)exclusiveMax);
    }

    /// <summary>Returns a value uniformly distributed in [<paramref name="min"/>, <paramref name="exclusiveMax"/>).</summary>
    public long NextInt64(long min, long exclusiveMax)
    {
        if (exclusiveMax <= min)
            throw new ArgumentOutOfRangeException(nameof(exclusiveMax), $"The range [{min}, {exclusiveMax}) is empty.");
        return min + (long)NextUInt64((ulong)(exclusiveMax - min));
    }

    /// <summary>Returns a double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Returns true with probability <paramref name="probability"/>.</summary>
    public bool Chance(double probability) => probability > 0 && (probability >= 1 || NextDouble() < probability);

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));

    private static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
