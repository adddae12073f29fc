using HmmEmu.Gpu.Driver;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Gpu.Tests;

// VRAM residency: prefetch each way, CPU touches bringing pages back, eviction when VRAM is full, migrate-on-fault.
public sealed class GpuVramTests
{
    private const ulong MiB = 1UL << 20;

    [Fact]
    public void PrefetchToVram_ThenSaxpy_NoFaultsAndMatchesCpu()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("prefetch", (p, gpu) =>
        {
            const int n = 256 * 1024;                         // 1 MiB per array
            ulong x = p.MapAnonymous(n * 4UL), y = p.MapAnonymous(n * 4UL);
            var xs = Enumerable.Range(0, n).Select(i => (float)(i % 1000)).ToArray();
            p.Write<float>(x, xs);
            p.Write<float>(y, Enumerable.Repeat(1f, n).ToArray());
            var ctx = gpu.Open(p);
            int free = gpu.FreeVramPages;
            Assert.Equal(Errno.Ok, ctx.Prefetch(x, n * 4UL, GpuMemoryTarget.Vram));
            Assert.Equal(Errno.Ok, ctx.Prefetch(y, n * 4UL, GpuMemoryTarget.Vram));
            Assert.Equal(2 * 256, ctx.Stats.MigratedToVram);
            Assert.Equal(free - 512, gpu.FreeVramPages);
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Saxpy(y, x, n, 3f)));
            Assert.Equal(0, ctx.Stats.Faults);                // prefetch mapped everything
            long back = gpu.PagesFaultedBackByCpu;
            var got = p.Read<float>(y, n);                    // the CPU touches VRAM pages: migrate_to_ram
            for (int i = 0; i < n; i++)
                Assert.Equal((3f * xs[i]) + 1f, got[i]);
            Assert.Equal(back + 256, gpu.PagesFaultedBackByCpu);
        });
    }

    [Fact]
    public void PrefetchToSystem_BringsPagesBackWithTheirData()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("back", (p, gpu) =>
        {
            ulong buf = p.MapAnonymous(MiB);
            var ctx = gpu.Open(p);
            Assert.Equal(Errno.Ok, ctx.Prefetch(buf, MiB, GpuMemoryTarget.Vram));
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, MiB / 4, 0x5A5A5A5A)));
            int free = gpu.FreeVramPages;
            Assert.Equal(Errno.Ok, ctx.Prefetch(buf, MiB, GpuMemoryTarget.System));
            Assert.Equal(256, ctx.Stats.MigratedToSystem);
            Assert.Equal(free + 256, gpu.FreeVramPages);
            long cpuBack = gpu.PagesFaultedBackByCpu;
            Assert.All(p.Read<uint>(buf, (int)(MiB / 4)), v => Assert.Equal(0x5A5A5A5Au, v));
            Assert.Equal(cpuBack, gpu.PagesFaultedBackByCpu);     // already in system memory: no CPU migrations
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, MiB / 4, 1)));  // the GPU faults the system pages in again
            Assert.All(p.Read<uint>(buf, (int)(MiB / 4)), v => Assert.Equal(1u, v));
        });
    }

    [Fact]
    public void WorkingSetLargerThanVram_EvictsAndStaysCorrect()
    {
        using var m = GpuMachine.Create();                   // 16 MiB of VRAM
        m.RunProcess("oversubscribe", (p, gpu) =>
        {
            const ulong bytes = 12 * MiB;
            int n = (int)(bytes / 4);
            ulong a = p.MapAnonymous(bytes), b = p.MapAnonymous(bytes);
            var ctx = gpu.Open(p);
            Assert.Equal(Errno.Ok, ctx.Prefetch(a, bytes, GpuMemoryTarget.Vram));
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(a, (ulong)n, 0xA)));
            Assert.Equal(Errno.Ok, ctx.Prefetch(b, bytes, GpuMemoryTarget.Vram));   // needs 8 MiB of a's VRAM
            Assert.True(gpu.PagesEvicted >= 2 * 512, $"evicted {gpu.PagesEvicted} pages");
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(b, (ulong)n, 0xB)));
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Saxpy(b, b, 16, 0f)));                     // a small kernel after eviction
            Assert.All(p.Read<uint>(a, n), v => Assert.Equal(0xAu, v));
            Assert.All(p.Read<uint>(b, n), v => Assert.Equal(0xBu, v));
            Assert.True(gpu.FreeVramPages <= gpu.VramPages);
        });
    }

    [Fact]
    public void RepeatedFaultsOnAWindow_MigrateItToVram()
    {
        using var m = GpuMachine.Create(driver: GpuDriverOptions.Default with { MigrateAfterFaults = 2 });
        m.RunProcess("migrate-on-fault", (p, gpu) =>
        {
            ulong buf = p.MapAnonymous(64 * 1024);
            var ctx = gpu.Open(p);
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, 16 * 1024, 1)));                 // fault 1: mapped from system memory
            Assert.Equal(0, ctx.Stats.MigratedToVram);
            Assert.Equal(Errno.Ok, p.Mm.Mprotect(buf, 64 * 1024, Prot.Read));           // invalidates the GPU mapping
            Assert.Equal(Errno.Ok, p.Mm.Mprotect(buf, 64 * 1024, Prot.ReadWrite));
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, 16 * 1024, 2)));                 // fault 2 on the same window: VRAM
            Assert.Equal(16, ctx.Stats.MigratedToVram);
            Assert.All(p.Read<uint>(buf, 16 * 1024), v => Assert.Equal(2u, v));
        });
    }

    [Fact]
    public void AtomicAdd_OnVramPages_NeedsNoFault()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("atomic-vram", (p, gpu) =>
        {
            ulong counters = p.MapAnonymous(4096);
            p.Write<ulong>(counters, Enumerable.Range(0, 512).Select(i => (ulong)i).ToArray());
            var ctx = gpu.Open(p);
            Assert.Equal(Errno.Ok, ctx.Prefetch(counters, 4096, GpuMemoryTarget.Vram));
            for (int k = 0; k < 3; k++)
                Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.AtomicAdd(counters, 512, 10)));
            Assert.Equal(0, ctx.Stats.Faults);
            Assert.Equal(Enumerable.Range(0, 512).Select(i => (ulong)i + 30).ToArray(), p.Read<ulong>(counters, 512));
        });
    }

    [Fact]
    public void Munmap_OfVramResidentBuffer_FreesItsVram()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("munmap-vram", (p, gpu) =>
        {
            ulong buf = p.MapAnonymous(2 * MiB);
            var ctx = gpu.Open(p);
            int free = gpu.FreeVramPages;
            Assert.Equal(Errno.Ok, ctx.Prefetch(buf, 2 * MiB, GpuMemoryTarget.Vram));
            Assert.Equal(free - 512, gpu.FreeVramPages);
            Assert.Equal(Errno.Ok, p.Mm.Munmap(buf, 2 * MiB));
            Assert.Equal(free, gpu.FreeVramPages);
            Assert.False(ctx.HasMapping(buf));
        });
    }

    [Fact]
    public void ProcessExit_WithVramPages_ReturnsAllVram()
    {
        using var m = GpuMachine.Create();
        int total = 0, freeAfter = -1;
        m.RunProcess("exit-vram", (p, gpu) =>
        {
            total = gpu.VramPages;
            ulong buf = p.MapAnonymous(4 * MiB);
            var ctx = gpu.Open(p);
            Assert.Equal(Errno.Ok, ctx.Prefetch(buf, 4 * MiB, GpuMemoryTarget.Vram));
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, MiB, 7)));
        });
        m.Kernel.Run(() => freeAfter = m.Driver.Devices.Count == 0 ? -2 : m.Device.FreeVramPages);
        Assert.Equal(-2, freeAfter);   // the driver was unbound at the end of RunProcess
        Assert.Equal(0, m.Bus.DmaPagesInUse);
        Assert.True(total > 0);
    }

    [Fact]
    public void PingPong_WithVramResidency_EachSideSeesTheOther()
    {
        using var m = GpuMachine.Create(SchedulerMode.Deterministic, seed: 7);
        m.RunProcess("pingpong-vram", (p, gpu) =>
        {
            const int n = 4096;
            ulong ones = p.MapAnonymous(n * 4UL), acc = p.MapAnonymous(n * 4UL);
            p.Write<float>(ones, Enumerable.Repeat(1f, n).ToArray());
            p.Write<float>(acc, new float[n]);
            var ctx = gpu.Open(p);
            float expected = 0;
            for (int round = 0; round < 4; round++)
            {
                Assert.Equal(Errno.Ok, ctx.Prefetch(acc, n * 4UL, GpuMemoryTarget.Vram));
                Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Saxpy(acc, ones, n, 1f)));
                expected += 1;
                var v = p.Read<float>(acc, n);                // back to system memory on the CPU's touch
                Assert.All(v, e => Assert.Equal(expected, e));
                for (int i = 0; i < n; i++)
                    v[i] *= 2;
                p.Write<float>(acc, v);
                expected *= 2;
            }
            Assert.True(gpu.PagesToVram >= 4 * 4 && gpu.PagesFaultedBackByCpu >= 4 * 4, $"{gpu.PagesToVram} / {gpu.PagesFaultedBackByCpu}");
            Assert.All(p.Read<float>(acc, n), e => Assert.Equal(expected, e));
        });
    }

    [Fact]
    public void Fork_AfterPrefetch_ChildReadsTheData()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("fork-vram", (p, gpu) =>
        {
            ulong buf = p.MapAnonymous(64 * 1024);
            var ctx = gpu.Open(p);
            Assert.Equal(Errno.Ok, ctx.Prefetch(buf, 64 * 1024, GpuMemoryTarget.Vram));
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, 16 * 1024, 0x77)));
            var child = p.Fork();
            Assert.All(child.Read<uint>(buf, 16 * 1024), v => Assert.Equal(0x77u, v));
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, 16 * 1024, 0x88)));
            Assert.All(child.Read<uint>(buf, 16 * 1024), v => Assert.Equal(0x77u, v));
            Assert.All(p.Read<uint>(buf, 16 * 1024), v => Assert.Equal(0x88u, v));
            child.Exit();
        });
    }
}
