namespace HmmEmu.Hardware.Translation;

/// <summary>The kind of access a device makes through a translation.</summary>
[Flags]
public enum Access : byte
{
    /// <summary>A load.</summary>
    Read = 1,

    /// <summary>A store.</summary>
    Write = 2,

    /// <summary>An atomic read-modify-write (needs the atomic permission as well as read and write).</summary>
    Atomic = 4,
}
