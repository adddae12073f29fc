using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using HmmEmu.Simulation;

namespace HmmEmu.Testing.Demo;

/// <summary>The demo's summary: a row per workload, the run's seed and mode, and the trace hash.</summary>
/// <param name="Seed">The seed.</param>
/// <param name="Mode">The scheduler mode.</param>
/// <param name="Rows">One row per workload, in run order.</param>
/// <param name="TraceHash">The simulation's trace hash at the end (same seed, deterministic mode: same hash).</param>
/// <param name="WallMs">Host time of the whole run, boot included.</param>
public sealed record DemoReport(ulong Seed, SchedulerMode Mode, IReadOnlyList<DemoRow> Rows, ulong TraceHash, double WallMs)
{
    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };

    /// <summary>Every workload verified.</summary>
    public bool AllVerified => Rows.Count > 0 && Rows.All(r => r.Verified);

    /// <summary>What each column is and where it comes from.</summary>
    public static IReadOnlyList<string> ColumnNotes { get; } =
    [
        "wall ms    host time (Stopwatch), for information only; virt us: virtual time charged by the timing model",
        "kern/flt/dma us   virtual time inside GPU kernels, GPU fault-batch handling and DMA transfers (trace spans);",
        "           they overlap (a kernel waits while its faults are handled, a fault batch migrates by DMA)",
        "dev flt    device page faults: GPU fault records of the demo's context + ODP faults raised by both NICs",
        "batch      GPU fault batches (one replay each); '-' where the GPU is not used (the NIC has no batching)",
        "mm flt     handle_mm_fault calls (trace event mm.fault): CPU faults, and the faults hmm_range_fault takes for devices",
        "->vram / ->ram / evict   pages the GPU driver migrated to VRAM, back to system RAM, and evicted",
        "tlb hit    hits/lookups of the GPU compute TLB and both NICs' translation caches ('-': no lookups;",
        "           the GPU copy engine's MMU is not counted)",
        "inval      mmu interval notifier callbacks the kernel delivered (trace event mmu_notifier.callback)",
    ];

    /// <summary>The table, the per-workload details and the column notes, for a terminal.</summary>
    public string FormatTable()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(c, $"{"workload",-16} {"wall ms",8} {"virt us",10} {"kern us",9} {"flt us",9} {"dma us",9} {"dev flt",7} {"batch",5} {"mm flt",7} {"->vram",6} {"->ram",6} {"evict",6} {"tlb hit",7} {"inval",6}  verdict");
        foreach (var r in Rows)
        {
            var k = r.Counters;
            string tlb = r.TlbHitPercent is { } h ? string.Create(c, $"{h:F1}%") : "-";
            string batches = r.UsesGpu ? k.GpuBatches.ToString(c) : "-";
            sb.AppendLine(c, $"{r.Id,-16} {r.WallMs,8:F0} {k.VirtualNs / 1000.0,10:F1} {k.ComputeNs / 1000.0,9:F1} {k.FaultNs / 1000.0,9:F1} {k.TransferNs / 1000.0,9:F1} {k.GpuFaults + k.NicFaults,7} {batches,5} {k.CpuFaults,7} {k.ToVram,6} {k.ToSystem,6} {k.Evicted,6} {tlb,7} {k.Invalidations,6}  {(r.Verified ? "verified" : "FAILED")}");
        }
        sb.AppendLine();
        foreach (var r in Rows)
            sb.AppendLine(c, $"  {r.Id}: {r.Title}. {(r.Verified ? "Verified" : "NOT verified")}: {r.Detail}.");
        sb.AppendLine();
        foreach (var note in ColumnNotes)
            sb.AppendLine(c, $"  {note}");
        sb.AppendLine();
        sb.Append(c, $"seed {Seed}, {Mode}, trace hash 0x{TraceHash:x16}, {WallMs / 1000:F1} s wall: ");
        sb.AppendLine(AllVerified ? "every workload verified against the CPU" : $"{Rows.Count(r => !r.Verified)} workload(s) NOT verified");
        return sb.ToString();
    }

    /// <summary>The machine-readable summary (<c>--json</c>).</summary>
    public string ToJson()
    {
        var doc = new
        {
            seed = Seed,
            mode = Mode,
            allVerified = AllVerified,
            traceHash = string.Create(CultureInfo.InvariantCulture, $"0x{TraceHash:x16}"),
            wallMs = WallMs,
            workloads = Rows.Select(r => new
            {
                id = r.Id,
                title = r.Title,
                verified = r.Verified,
                detail = r.Detail,
                wallMs = r.WallMs,
                virtualNs = r.Counters.VirtualNs,
                gpuKernelNs = r.Counters.ComputeNs,
                gpuFaultBatchNs = r.Counters.FaultNs,
                dmaTransferNs = r.Counters.TransferNs,
                deviceFaults = r.Counters.GpuFaults + r.Counters.NicFaults,
                gpuFaults = r.Counters.GpuFaults,
                nicFaults = r.Counters.NicFaults,
                faultBatches = r.UsesGpu ? (long?)r.Counters.GpuBatches : null,
                mmFaults = r.Counters.CpuFaults,
                migratedToVram = r.Counters.ToVram,
                migratedToSystem = r.Counters.ToSystem,
                evicted = r.Counters.Evicted,
                tlbHits = r.Counters.TlbHits,
                tlbMisses = r.Counters.TlbMisses,
                tlbHitRate = r.TlbHitPercent / 100.0,
                invalidations = r.Counters.Invalidations,
            }),
        };
        return JsonSerializer.Serialize(doc, s_json);
    }
}
