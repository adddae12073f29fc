namespace HmmEmu.Gpu;

/// <summary>Why the walk failed (fault record byte 0x14).</summary>
public enum GpuFaultReason : byte
{
    /// <summary>No valid leaf maps the page.</summary>
    NotPresent = 1,

    /// <summary>A leaf maps the page without a right the access needs (write, atomic).</summary>
    Permission = 2,
}
