namespace HmmEmu.Hardware.Rings;

/// <summary>
/// Names the entry a consumer took from a submission ring, so that advancing after the entry completes touches the
/// same ring configuration it was read from (a reconfiguration or reset in between makes the advance a no-op).
/// </summary>
/// <param name="Index">The entry's ring index, with wrap bit.</param>
/// <param name="Generation">The ring configuration the entry was read under.</param>
public readonly record struct RingTicket(uint Index, uint Generation);
