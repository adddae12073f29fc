namespace HmmEmu.Gpu.Driver;

/// <summary>The GPU driver's tunables (module parameters).</summary>
public sealed record GpuDriverOptions
{
    /// <summary>The defaults.</summary>
    public static GpuDriverOptions Default { get; } = new();

    /// <summary>
    /// Most pages one fault group resolves with one <c>RangeFault</c>: contiguous faulting pages of a context are merged
    /// up to this many (64 = 256 KiB, nouveau's and Xe's order of magnitude).
    /// </summary>
    public int FaultGroupPages { get; init; } = 64;

    /// <summary>How long one group may keep retrying <c>RangeFault</c> on EBUSY before it is cancelled (HMM_RANGE_DEFAULT_TIMEOUT).</summary>
    public ulong RangeTimeoutNs { get; init; } = 1_000_000_000;
}
