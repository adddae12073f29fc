namespace HmmEmu.Testing.Demo;

/// <summary>
/// A snapshot of every counter the demo's table is built from (all cumulative since boot); a workload's row is the
/// difference of the snapshots taken around it.
/// </summary>
/// <param name="VirtualNs">The virtual clock.</param>
/// <param name="GpuFaults">Fault records the GPU driver received for the demo's GPU context.</param>
/// <param name="GpuBatches">Fault batches the GPU driver handled for the context (one replay each).</param>
/// <param name="NicFaults">ODP page faults raised by both NICs (requester, completer and responder side).</param>
/// <param name="CpuFaults">handle_mm_fault calls (trace event mm.fault): CPU faults and the faults hmm_range_fault takes for devices.</param>
/// <param name="ToVram">Pages the GPU driver migrated to VRAM (prefetch and migrate-on-fault).</param>
/// <param name="ToSystem">Pages the GPU driver migrated back to system memory (prefetch, eviction, CPU or NIC touch).</param>
/// <param name="Evicted">Pages the GPU driver evicted from VRAM to make room.</param>
/// <param name="TlbHits">Hits of the GPU compute TLB and both NICs' translation caches.</param>
/// <param name="TlbMisses">Misses of the same TLBs.</param>
/// <param name="Invalidations">mmu interval notifier callbacks the kernel delivered (trace event mmu_notifier.callback).</param>
/// <param name="ComputeNs">Virtual time inside GPU kernels (trace spans gpu.kernel).</param>
/// <param name="FaultNs">Virtual time the GPU driver spent handling fault batches (trace spans gpu.fault_batch).</param>
/// <param name="TransferNs">Virtual time inside DMA transfers (trace spans dma.transfer).</param>
public readonly record struct DemoCounters(
    ulong VirtualNs, long GpuFaults, long GpuBatches, long NicFaults, long CpuFaults, long ToVram, long ToSystem, long Evicted,
    long TlbHits, long TlbMisses, long Invalidations, ulong ComputeNs, ulong FaultNs, ulong TransferNs)
{
    /// <summary>What happened between <paramref name="before"/> and this snapshot.</summary>
    public DemoCounters Since(in DemoCounters before) => new(
        VirtualNs - before.VirtualNs, GpuFaults - before.GpuFaults, GpuBatches - before.GpuBatches, NicFaults - before.NicFaults,
        CpuFaults - before.CpuFaults, ToVram - before.ToVram, ToSystem - before.ToSystem, Evicted - before.Evicted,
        TlbHits - before.TlbHits, TlbMisses - before.TlbMisses, Invalidations - before.Invalidations,
        ComputeNs - before.ComputeNs, FaultNs - before.FaultNs, TransferNs - before.TransferNs);
}
