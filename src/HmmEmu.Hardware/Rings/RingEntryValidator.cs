namespace HmmEmu.Hardware.Rings;

/// <summary>
/// Decides whether an entry read from a submission ring is well-formed. Returning false stops the ring with
/// <see cref="RingError.MalformedEntry"/> at the entry's index. It runs under the ring's lock: it must not throw, block,
/// keep the span or call into the ring (which throws <see cref="InvalidOperationException"/>).
/// </summary>
public delegate bool RingEntryValidator(ReadOnlySpan<byte> entry);
