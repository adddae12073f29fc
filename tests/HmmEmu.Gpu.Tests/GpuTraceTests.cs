using System.Text;
using HmmEmu.Simulation;
using HmmEmu.Simulation.Export;
using HmmEmu.Simulation.Tests;

namespace HmmEmu.Gpu.Tests;

// The Chrome/Perfetto trace of a GPU workload (PingPong: kernels that fault, migrate to VRAM with the copy engine, and
// CPU faults that migrate back through the invalidate callback) is well formed, holds every kind of slice and counter
// the workload exercises, and is the same bytes for the same seed.
public sealed class GpuTraceTests
{
    private static byte[] TraceOf(ulong seed)
    {
        using var m = GpuMachine.Create(SchedulerMode.Deterministic, seed);
        using var buffer = new MemoryStream();
        using (new ChromeTraceWriter(m.Kernel.Scheduler, buffer, leaveOpen: true))
            m.RunProcess("pingpong", GpuScenarios.PingPong);
        return buffer.ToArray();
    }

    [Fact]
    public void Trace_PingPong_HasEverySliceKindAndCounter()
    {
        var summary = ChromeTraceAssert.Valid(TraceOf(seed: 1));

        foreach (string slice in new[] { "gpu.kernel", "gpu.fault_batch", "mmu_notifier.invalidate", "dma.transfer", "migrate.migrate_vma" })
            Assert.True(summary.Slices.GetValueOrDefault(slice) > 0, $"no '{slice}' slice; slices: {string.Join(", ", summary.Slices)}");
        Assert.Equal(6, summary.Slices["gpu.kernel"]);
        Assert.True(summary.Counters.GetValueOrDefault("gpu.vram") > 0, "no VRAM counter");
        Assert.True(summary.Counters.GetValueOrDefault("gpu.compute_tlb_hit_rate") > 0, "no TLB hit-rate counter");
        Assert.True(summary.Instants > 0);
    }

    [Fact]
    public void Trace_PingPong_TracksGroupedIntoHostUserAndGpu()
    {
        string json = Encoding.UTF8.GetString(TraceOf(seed: 1));

        Assert.Contains("\"args\":{\"name\":\"host\"}", json, StringComparison.Ordinal);
        Assert.Contains("\"args\":{\"name\":\"gpu\"}", json, StringComparison.Ordinal);
        Assert.Contains("\"args\":{\"name\":\"gpu compute\"}", json, StringComparison.Ordinal);
        Assert.Contains("\"args\":{\"name\":\"dma gpu.ce\"}", json, StringComparison.Ordinal);
        Assert.Contains("\"name\":\"user pingpong[", json, StringComparison.Ordinal);
    }

    [Fact]
    public void Trace_SameSeedTwice_ByteIdenticalFiles()
    {
        Assert.Equal(TraceOf(seed: 7), TraceOf(seed: 7));
    }
}
