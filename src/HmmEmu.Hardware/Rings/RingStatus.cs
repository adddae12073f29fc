namespace HmmEmu.Hardware.Rings;

/// <summary>
/// A ring's status as a device exposes it: state, error code and the index of the offending entry (or the bad index
/// value the driver wrote).
/// </summary>
/// <param name="State">Disabled, running or stopped.</param>
/// <param name="Error">Why the ring stopped; <see cref="RingError.None"/> while it runs.</param>
/// <param name="ErrorIndex">The ring index (with wrap bit) of the offending entry, or the rejected index value.</param>
public readonly record struct RingStatus(RingState State, RingError Error, uint ErrorIndex)
{
    /// <summary>
    /// The status as one 64-bit register value: bits 1:0 state, bits 15:8 error code, bits 63:32 error index.
    /// </summary>
    public ulong Pack() => (ulong)State | ((ulong)Error << 8) | ((ulong)ErrorIndex << 32);
}
