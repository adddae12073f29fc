namespace HmmEmu.Hardware.Rings;

/// <summary>Why a ring stopped or refused a request. Values are stable: devices expose them in status registers.</summary>
public enum RingError : byte
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The entry count is zero, not a power of two, or larger than <see cref="DescriptorRing.MaxEntries"/>.</summary>
    BadSize = 1,

    /// <summary>The base address is misaligned, or the ring does not lie wholly in reachable memory.</summary>
    BadBase = 2,

    /// <summary>A producer or consumer index written by the driver is out of range, runs ahead of the other side, or goes backwards.</summary>
    BadIndex = 3,

    /// <summary>The entry validator rejected an entry (see <see cref="RingStatus.ErrorIndex"/>).</summary>
    MalformedEntry = 4,

    /// <summary>An entry could not be read from memory.</summary>
    EntryUnreadable = 5,

    /// <summary>A record could not be written to memory.</summary>
    EntryUnwritable = 6,

    /// <summary>The device had a record to post but every slot held a record the driver had not consumed.</summary>
    Overflow = 7,

    /// <summary>Reconfiguration was refused because entries are still pending; reset the ring first.</summary>
    Busy = 8,
}
