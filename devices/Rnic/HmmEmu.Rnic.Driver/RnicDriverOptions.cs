namespace HmmEmu.Rnic.Driver;

/// <summary>The verbs driver's tunables.</summary>
public sealed record RnicDriverOptions
{
    /// <summary>The defaults.</summary>
    public static RnicDriverOptions Default { get; } = new();

    /// <summary>Command-queue entries (a power of two). Default 64.</summary>
    public uint CommandEntries { get; init; } = 64;

    /// <summary>Event-queue entries (a power of two). Default 1024.</summary>
    public uint EventEntries { get; init; } = 1024;

    /// <summary>
    /// The most an ODP fault maps at once, in bytes: the faulting range is clipped to this window around the miss
    /// (mlx5 uses a prefetch window of the same order). Default 2 MiB.
    /// </summary>
    public ulong FaultWindowBytes { get; init; } = 2UL << 20;

    /// <summary>The largest MR, in bytes (its MTT must fit one 2 MiB coherent buffer: 1 GiB of 4 KiB pages).</summary>
    public ulong MaxMrBytes { get; init; } = 1UL << 30;
}
