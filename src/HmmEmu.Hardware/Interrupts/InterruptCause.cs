namespace HmmEmu.Hardware.Interrupts;

/// <summary>One cause of an <see cref="InterruptCauses"/> block: its INT_STATUS bit and the vector it is sent on.</summary>
/// <param name="Name">The cause's field name in INT_STATUS, e.g. "DMA_DONE".</param>
/// <param name="Bit">The cause's bit as a mask: exactly one bit set.</param>
/// <param name="Vector">The <see cref="MsixTable"/> vector the cause is sent on (several causes may share one).</param>
public readonly record struct InterruptCause(string Name, uint Bit, int Vector);
