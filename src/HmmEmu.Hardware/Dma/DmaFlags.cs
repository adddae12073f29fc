namespace HmmEmu.Hardware.Dma;

/// <summary>Descriptor flags (bits 15:0 of the word at offset 0x14). Bits not named here are reserved and must be zero.</summary>
[Flags]
public enum DmaFlags : ushort
{
    /// <summary>No flags: a plain copy, no interrupt.</summary>
    None = 0,

    /// <summary>Raise the completion interrupt once this descriptor's completion record is posted.</summary>
    InterruptOnCompletion = 1 << 0,

    /// <summary>
    /// Run only if every descriptor since the previous fenced one (or the last reset) succeeded; otherwise complete
    /// as <see cref="DmaStatus.Skipped"/> without moving data. Chains dependent transfers.
    /// </summary>
    Fence = 1 << 1,

    /// <summary>
    /// Fill instead of copy: the destination is filled with the byte in bits 7:0 of the source field (bits 63:8
    /// must be zero). A zero source makes it a zeroing descriptor.
    /// </summary>
    Fill = 1 << 2,
}
