namespace HmmEmu.Hardware.Dma;

/// <summary>A snapshot of a <see cref="DmaEngine"/>'s counters.</summary>
/// <param name="Descriptors">Descriptors that completed successfully.</param>
/// <param name="Bytes">Bytes moved, including by descriptors that later failed or were aborted.</param>
/// <param name="Errors">Descriptors that completed with an error status (fault, bad descriptor).</param>
/// <param name="Aborted">Descriptors completed as aborted by a reset or shutdown.</param>
/// <param name="Skipped">Fenced descriptors skipped after an earlier failure.</param>
/// <param name="DroppedCompletions">Completion records the completion ring refused (overflow, stopped or disabled ring); each was reported in its status.</param>
/// <param name="RingErrors">Guest programming errors: bad doorbells, refused configurations, malformed or unreadable entries.</param>
/// <param name="Resets">Resets finished.</param>
/// <param name="CompletionRingStalls">Times the engine waited for the driver to free completion slots before starting a descriptor.</param>
public readonly record struct DmaEngineStats(
    long Descriptors,
    long Bytes,
    long Errors,
    long Aborted,
    long Skipped,
    long DroppedCompletions,
    long RingErrors,
    long Resets,
    long CompletionRingStalls)
{
    /// <summary>Every completion the engine posted or tried to post.</summary>
    public long Finished => Descriptors + Errors + Aborted + Skipped;
}
