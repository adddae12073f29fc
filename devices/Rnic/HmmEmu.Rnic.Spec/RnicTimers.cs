namespace HmmEmu.Rnic;

/// <summary>The IBA encodings of the two QP timers: the RNR NAK timer (MinRnrTimer, AETH value) and the local ACK timeout.</summary>
public static class RnicTimers
{
    // IBA table "Encoding for RNR NAK Timer Field", in µs; code 0 is the longest (655.36 ms). The same values as
    // enum ib_rnr_timeout in include/rdma/ib_verbs.h (IB_RNR_TIMER_655_36 = 0, IB_RNR_TIMER_000_01 = 1, ...).
    private static readonly uint[] s_rnrMicroseconds =
    [
        655_360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960, 1_280, 1_920,
        2_560, 3_840, 5_120, 7_680, 10_240, 15_360, 20_480, 30_720, 40_960, 61_440, 81_920, 122_880, 163_840, 245_760, 327_680, 491_520,
    ];

    /// <summary>Largest timer code (5 bits).</summary>
    public const byte MaxCode = 31;

    /// <summary>The RNR wait, in ns, of RNR timer code <paramref name="code"/> (0..31).</summary>
    public static ulong RnrTimerNs(byte code)
    {
        if (code > MaxCode)
            throw new ArgumentOutOfRangeException(nameof(code), code, "An RNR timer code is 5 bits (0 to 31).");
        return s_rnrMicroseconds[code] * 1000UL;
    }

    /// <summary>The local ACK timeout, in ns, of timeout code <paramref name="code"/>: 4.096 µs · 2^code, or 0 for code 0 (no timeout).</summary>
    public static ulong TimeoutNs(byte code)
    {
        if (code > MaxCode)
            throw new ArgumentOutOfRangeException(nameof(code), code, "A timeout code is 5 bits (0 to 31).");
        return code == 0 ? 0 : 4096UL << code;
    }
}
