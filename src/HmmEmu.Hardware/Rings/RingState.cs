namespace HmmEmu.Hardware.Rings;

/// <summary>Whether a ring is doing work.</summary>
public enum RingState : byte
{
    /// <summary>Not configured (or last configured with bad values and then reset): the ring does nothing.</summary>
    Disabled = 0,

    /// <summary>Configured and working.</summary>
    Running = 1,

    /// <summary>Stopped by an error (see <see cref="RingStatus.Error"/>); refuses work until reset or recovered.</summary>
    Stopped = 2,
}
