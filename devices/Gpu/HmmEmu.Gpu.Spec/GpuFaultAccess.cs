namespace HmmEmu.Gpu;

/// <summary>The access that faulted (fault record byte 0x12).</summary>
public enum GpuFaultAccess : byte
{
    /// <summary>A load.</summary>
    Read = 1,

    /// <summary>A store.</summary>
    Write = 2,

    /// <summary>An atomic read-modify-write (needs the atomic right as well as read and write).</summary>
    Atomic = 3,
}
