namespace HmmEmu.Hardware.Dma;

/// <summary>The status byte of a DMA completion record (offset 0x0C). 0 never appears in a posted record.</summary>
public enum DmaStatus : byte
{
    /// <summary>Not a status: a slot the engine never wrote.</summary>
    None = 0,

    /// <summary>Every byte moved.</summary>
    Completed = 1,

    /// <summary>A page of the transfer had no valid translation; the fault address names it.</summary>
    NotPresent = 2,

    /// <summary>A page was mapped without the permission the access needed (read for the source, write for the destination).</summary>
    Permission = 3,

    /// <summary>An address, or the memory it translated to, is outside what the engine can reach.</summary>
    OutOfRange = 4,

    /// <summary>The translator found a malformed page-table entry for the fault address.</summary>
    BadTable = 5,

    /// <summary>The descriptor itself is invalid: zero or oversized length, reserved flag bits, or a bad fill pattern. Nothing moved.</summary>
    BadDescriptor = 6,

    /// <summary>A reset or shutdown stopped the descriptor before or during the transfer; bytes done says how far it got.</summary>
    Aborted = 7,

    /// <summary>A fenced descriptor that did not run because an earlier one in its chain failed.</summary>
    Skipped = 8,
}
