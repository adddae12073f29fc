namespace HmmEmu.Rnic;

/// <summary>The access that faulted (byte 0x02 of an <see cref="RnicEqe"/>); the driver faults the range in writable for Write and Atomic.</summary>
public enum RnicFaultAccess : byte
{
    /// <summary>Not a page fault.</summary>
    None = 0,

    /// <summary>The device reads the range (SEND/WRITE source, READ responder).</summary>
    Read = 1,

    /// <summary>The device writes the range (receive buffer, WRITE target, READ destination).</summary>
    Write = 2,

    /// <summary>The device reads and writes 8 bytes atomically (atomic target or atomic result buffer).</summary>
    Atomic = 3,
}
