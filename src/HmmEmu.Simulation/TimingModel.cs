namespace HmmEmu.Simulation;

/// <summary>
/// Virtual-time costs charged by simulated code, in nanoseconds. Every figure is a configurable default; where a
/// published source exists it is named, otherwise the value is a free parameter chosen to be of the right order.
/// </summary>
public sealed record TimingModel
{
    /// <summary>The defaults used when nothing else is configured.</summary>
    public static TimingModel Default { get; } = new();

    /// <summary>Entering and leaving the kernel for a system call or ioctl. Free parameter (order of 100 ns).</summary>
    public ulong SyscallNs { get; init; } = 100;

    /// <summary>
    /// Servicing one minor CPU page fault (demand zero, COW break, zero page). Free parameter; Linux minor faults are
    /// commonly measured at 0.5-2 µs.
    /// </summary>
    public ulong CpuPageFaultNs { get; init; } = 1_000;

    /// <summary>Examining one page-table entry during a software walk (hmm_range_fault, zap, mprotect).</summary>
    public ulong PteVisitNs { get; init; } = 2;

    /// <summary>Fixed cost of one mmu-notifier invalidation window (range start + end), excluding callbacks.</summary>
    public ulong InvalidationNs { get; init; } = 300;

    /// <summary>CPU memory copy bandwidth, bytes per nanosecond (10 = 10 GB/s, a single-core memcpy order).</summary>
    public ulong MemcpyBytesPerNs { get; init; } = 10;

    /// <summary>Reclaiming one page (unmap, write back if dirty, free). Free parameter.</summary>
    public ulong ReclaimPageNs { get; init; } = 2_000;

    /// <summary>Virtual time to copy <paramref name="bytes"/> bytes with the CPU.</summary>
    public ulong CopyNs(ulong bytes) => MemcpyBytesPerNs == 0 ? 0 : (bytes + MemcpyBytesPerNs - 1) / MemcpyBytesPerNs;
}
