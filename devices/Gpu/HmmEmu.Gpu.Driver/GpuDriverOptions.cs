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
    /// The GPU fault-around window in pages: a GPU fault maps the whole aligned window around it that lies in the same
    /// VMA, so a kernel streaming through memory takes one fault round trip per window rather than per page. 512 (2 MiB)
    /// is amdkfd's default SVM granularity; 1 maps only the faulting pages. It is also the unit of migrate-on-fault.
    /// </summary>
    public int FaultWindowPages { get; init; } = 512;

    /// <summary>
    /// The CPU fault-around window of <c>migrate_to_ram</c> in pages: a CPU touch of a VRAM page brings back the aligned
    /// window around it inside the VMA (16 = 64 KiB). Smaller than the GPU's: the CPU pays for what it pulls back.
    /// </summary>
    public int CpuFaultWindowPages { get; init; } = 16;

    /// <summary>
    /// Migrate-on-fault: when one window of a context has faulted this many times (it was mapped, then invalidated,
    /// and is faulting again), its pages move to VRAM before it is mapped again. 0 turns it off.
    /// </summary>
    public int MigrateAfterFaults { get; init; } = 3;

    /// <summary>How long one group may keep retrying <c>RangeFault</c> on EBUSY before it is cancelled (HMM_RANGE_DEFAULT_TIMEOUT).</summary>
    public ulong RangeTimeoutNs { get; init; } = 1_000_000_000;
}
