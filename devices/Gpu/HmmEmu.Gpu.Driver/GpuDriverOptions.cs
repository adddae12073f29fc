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

    /// <summary>
    /// The fault-around window in pages: a fault maps the whole aligned window around it that lies in the same VMA
    /// (16 = 64 KiB, the size of a GPU's big-page TLB entry), so a kernel streaming through memory takes one fault per
    /// window rather than per page. 1 maps only the faulting pages.
    /// </summary>
    public int FaultWindowPages { get; init; } = 16;

    /// <summary>
    /// Migrate-on-fault: when one window of a context has faulted this many times (it was mapped, then invalidated,
    /// and is faulting again), its pages move to VRAM before it is mapped again. 0 turns it off.
    /// </summary>
    public int MigrateAfterFaults { get; init; } = 3;

    /// <summary>How long one group may keep retrying <c>RangeFault</c> on EBUSY before it is cancelled (HMM_RANGE_DEFAULT_TIMEOUT).</summary>
    public ulong RangeTimeoutNs { get; init; } = 1_000_000_000;
}
