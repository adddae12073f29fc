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
    /// Migrate-on-fault: when one window of a context has faulted this many times, its pages move to VRAM before it is
    /// mapped. 1 (the default) migrates on the first GPU fault, as CUDA's unified memory places a page where it is
    /// touched; a higher value maps system memory first and moves only windows the GPU keeps faulting on (after
    /// invalidations); 0 never migrates on faults (only <c>Prefetch</c> does).
    /// </summary>
    public int MigrateAfterFaults { get; init; } = 1;

    /// <summary>
    /// Thrashing mitigation: once faults of one context have migrated a window to VRAM this many times, that context
    /// stops migrating the window on faults and maps it where it lies. Each new migration means the pages were taken
    /// back in between (by the CPU or another device), and moving them again would only ping-pong: two devices, or a
    /// device and the CPU, touching the same pages would each steal them before the other's access completes (UVM pins
    /// thrashing pages in place for the same reason). 0 never stops migrating.
    /// </summary>
    public int ThrashMigrations { get; init; } = 4;

    /// <summary>
    /// Thrashing throttle, in virtual nanoseconds: when one context faults again on the page it faulted on last (its
    /// mapping was taken away again before the replayed access could use it — by the CPU, another device, or a
    /// device-exclusive grab for an atomic), the fault handler naps before resolving it, doubling the nap on every further
    /// repeat (up to 256 times this), so that whoever took the page finishes its access. Without it two agents fighting
    /// over one page (an atomic on one GPU and a read on another) steal it from each other forever. UVM throttles a
    /// thrashing processor the same way. 0 turns it off.
    /// </summary>
    public ulong ThrashThrottleNs { get; init; } = 10_000;

    /// <summary>
    /// Fault-ahead: when a context's faults walk through memory window after window, the fault handler maps this many
    /// following windows (inside the same VMA) right after the replay, while the device works on the current one.
    /// 0 turns it off.
    /// </summary>
    public int FaultAheadWindows { get; init; } = 1;

    /// <summary>How long one group may keep retrying <c>RangeFault</c> on EBUSY before it is cancelled (HMM_RANGE_DEFAULT_TIMEOUT).</summary>
    public ulong RangeTimeoutNs { get; init; } = 1_000_000_000;
}
