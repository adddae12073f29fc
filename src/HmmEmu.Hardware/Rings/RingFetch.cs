namespace HmmEmu.Hardware.Rings;

/// <summary>The outcome of asking a submission ring for its next entry.</summary>
public enum RingFetch : byte
{
    /// <summary>An entry was read; process it, then advance the ring with its ticket.</summary>
    Entry = 0,

    /// <summary>The ring is running and holds no entry.</summary>
    Empty = 1,

    /// <summary>The ring is disabled or was already stopped; it refuses work until reset.</summary>
    Stopped = 2,

    /// <summary>The next entry was malformed or unreadable: the ring stopped just now (report it once).</summary>
    Faulted = 3,
}
