namespace HmmEmu.Mirror;

/// <summary>The mirror device's ioctl requests (HMM_DMIRROR_*), with the kernel's numbers.</summary>
public enum MirrorIoctl : uint
{
    /// <summary>HMM_DMIRROR_READ: the device reads <c>npages</c> at <c>addr</c> into the buffer at <c>ptr</c>, faulting as needed.</summary>
    Read = 0xC0284800,

    /// <summary>HMM_DMIRROR_WRITE: the device writes the buffer at <c>ptr</c> to <c>npages</c> at <c>addr</c>, write-faulting as needed.</summary>
    Write = 0xC0284801,

    /// <summary>HMM_DMIRROR_MIGRATE_TO_DEV: migrate <c>npages</c> at <c>addr</c> to device memory and read them back into <c>ptr</c>.</summary>
    MigrateToDevice = 0xC0284802,

    /// <summary>HMM_DMIRROR_MIGRATE_TO_SYS: migrate this device's pages in the range back to system memory.</summary>
    MigrateToSystem = 0xC0284803,

    /// <summary>HMM_DMIRROR_EXCLUSIVE: take device-exclusive (atomic) access to each page and read the range back into <c>ptr</c>.</summary>
    Exclusive = 0xC0284805,

    /// <summary>HMM_DMIRROR_CHECK_EXCLUSIVE: EPERM if the device still holds atomic access to any page of the range.</summary>
    CheckExclusive = 0xC0284806,

    /// <summary>HMM_DMIRROR_RELEASE: evict all of the device's memory back to system memory.</summary>
    Release = 0xC0284807,

    /// <summary>HMM_DMIRROR_FLAGS: sets the mirror's flags to <c>npages</c> (<see cref="MirrorFile.FlagFailAlloc"/>).</summary>
    Flags = 0xC0284808,

    /// <summary>HMM_DMIRROR_SNAPSHOT: one byte per page describing the CPU mapping, without faulting.</summary>
    Snapshot = 0xC0284804,
}
