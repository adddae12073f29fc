namespace HmmEmu.Hardware.Rings;

/// <summary>
/// Decides whether an entry read from a submission ring is well-formed. Returning false stops the ring with
/// <see cref="RingError.MalformedEntry"/> at the entry's index. Must not throw, block or keep the span.
/// </summary>
public delegate bool RingEntryValidator(ReadOnlySpan<byte> entry);
