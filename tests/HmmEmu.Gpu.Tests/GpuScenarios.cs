using HmmEmu.Gpu.Driver;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Gpu.Tests;

/// <summary>
/// The GPU scenarios as bodies that run on a booted <see cref="GpuMachine"/>: each checks memory contents against a
/// plain CPU computation and the driver's counters. <see cref="GpuScenarioSeedTests"/> runs each over many seeds and in
/// threaded mode.
/// </summary>
internal static class GpuScenarios
{
    private const ulong MiB = 1UL << 20;

    /// <summary>Every scenario by name.</summary>
    public static IReadOnlyDictionary<string, Action<Process, GpuDevice>> All { get; } = new Dictionary<string, Action<Process, GpuDevice>>
    {
        [nameof(SaxpyFirstTouch)] = SaxpyFirstTouch,
        [nameof(SaxpyAfterPrefetch)] = SaxpyAfterPrefetch,
        [nameof(PingPong)] = PingPong,
        [nameof(PingPongVram)] = PingPongVram,
        [nameof(Oversubscription)] = Oversubscription,
        [nameof(ForkWhileRunning)] = ForkWhileRunning,
        [nameof(MunmapDuringUse)] = MunmapDuringUse,
        [nameof(MprotectThenWrite)] = MprotectThenWrite,
    };

    /// <summary>Saxpy on freshly mmap'ed memory: first-touch faults, result equal to the CPU's.</summary>
    public static void SaxpyFirstTouch(Process p, GpuDevice gpu)
    {
        const int n = 3 * 1024 + 17;             // not a whole number of pages
        ulong x = p.MapAnonymous(n * 4UL), y = p.MapAnonymous(n * 4UL);
        var xs = Enumerable.Range(0, n).Select(i => (float)((i * 7) % 101) - 50f).ToArray();
        var ys = Enumerable.Range(0, n).Select(i => (float)((i * 13) % 37) * 0.5f).ToArray();
        p.Write<float>(x, xs);
        p.Write<float>(y, ys);
        var ctx = gpu.Open(p);
        Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Saxpy(y, x, n, 2.5f)));
        var got = p.Read<float>(y, n);
        for (int i = 0; i < n; i++)
            Assert.Equal((2.5f * xs[i]) + ys[i], got[i]);
        var stats = ctx.Stats;
        Assert.True(stats.Faults > 0 && stats.Batches > 0, $"first touch must fault: {stats}");
        Assert.True(stats.PagesMapped >= 2 * ((n * 4 + 4095) / 4096), $"every page of x and y gets mapped: {stats}");
        ctx.Close();
    }

    /// <summary>The same after prefetching both arrays to VRAM: no faults at all; the CPU's read brings y back.</summary>
    public static void SaxpyAfterPrefetch(Process p, GpuDevice gpu)
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
    }

    /// <summary>CPU and GPU alternately updating the same pages: each sees the other's writes, whatever the placement policy.</summary>
    public static void PingPong(Process p, GpuDevice gpu)
    {
        const int n = 2048;
        ulong ones = p.MapAnonymous(n * 4UL), acc = p.MapAnonymous(n * 4UL);
        p.Write<float>(ones, Enumerable.Repeat(1f, n).ToArray());
        p.Write<float>(acc, new float[n]);
        var ctx = gpu.Open(p);
        float expected = 0;
        long faultsAfterFirstRound = -1;
        for (int round = 0; round < 6; round++)
        {
            Assert.True(ctx.Wait(ctx.Saxpy(acc, ones, n, 1f)).IsOk);   // GPU: +1
            expected += 1;
            if (round == 0)
                faultsAfterFirstRound = ctx.Stats.Faults;
            var v = p.Read<float>(acc, n);
            Assert.All(v, e => Assert.Equal(expected, e));
            for (int i = 0; i < n; i++)
                v[i] *= 2;                                                // CPU: ×2
            p.Write<float>(acc, v);
            expected *= 2;
        }
        Assert.All(p.Read<float>(acc, n), e => Assert.Equal(expected, e));
        if (gpu.Options.MigrateAfterFaults == 1)
        {
            // The default policy places pages where they are touched: acc moves to VRAM on each GPU turn and back on
            // each CPU turn (2 pages each way per round).
            Assert.True(ctx.Stats.MigratedToVram >= 6 * 2, $"to VRAM: {ctx.Stats}");
            Assert.True(gpu.PagesFaultedBackByCpu >= 6 * 2, $"back by the CPU: {gpu.PagesFaultedBackByCpu}");
        }
        else
        {
            // Mapped from system memory: CPU reads and writes of pages both map do not change the CPU's page table, so
            // the GPU keeps its mappings.
            Assert.Equal(faultsAfterFirstRound, ctx.Stats.Faults);
            Assert.Equal(0, ctx.Stats.Invalidations);
        }
    }

    /// <summary>The same with the pages moved to VRAM before each GPU turn and back on each CPU turn.</summary>
    public static void PingPongVram(Process p, GpuDevice gpu)
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
    }

    /// <summary>A working set larger than VRAM: eviction keeps every byte.</summary>
    public static void Oversubscription(Process p, GpuDevice gpu)
    {
        int pages = gpu.VramPages * 3 / 4;                // each buffer fills three quarters of VRAM
        ulong bytes = (ulong)pages * 4096;
        int n = (int)(bytes / 4);
        ulong a = p.MapAnonymous(bytes), b = p.MapAnonymous(bytes);
        var ctx = gpu.Open(p);
        Assert.Equal(Errno.Ok, ctx.Prefetch(a, bytes, GpuMemoryTarget.Vram));
        Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(a, (ulong)n, 0xA)));
        Assert.Equal(Errno.Ok, ctx.Prefetch(b, bytes, GpuMemoryTarget.Vram));   // needs half of a's VRAM
        Assert.True(gpu.PagesEvicted >= (2 * pages) - gpu.VramPages, $"evicted {gpu.PagesEvicted} pages");
        Assert.Equal(pages, ctx.Stats.MigratedToVram - pages);                    // all of b made it to VRAM
        Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(b, (ulong)n, 0xB)));
        Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Saxpy(b, b, 16, 0f)));                     // a small kernel after eviction
        Assert.All(p.Read<uint>(a, n), v => Assert.Equal(0xAu, v));
        Assert.All(p.Read<uint>(b, n), v => Assert.Equal(0xBu, v));
        Assert.True(gpu.FreeVramPages <= gpu.VramPages);
    }

    /// <summary>Fork while a kernel writes the buffer: the child keeps its copy, the parent sees the GPU's writes.</summary>
    public static void ForkWhileRunning(Process p, GpuDevice gpu)
    {
        const int n = 16 * 1024;
        ulong buf = p.MapAnonymous(n * 4UL);
        p.Write<uint>(buf, Enumerable.Repeat(0xAAu, n).ToArray());
        var ctx = gpu.Open(p);
        var fence = ctx.Fill(buf, n, 0xBB);
        var child = p.Fork();
        Assert.True(ctx.Wait(fence).IsOk);
        Assert.All(p.Read<uint>(buf, n), v => Assert.Equal(0xBBu, v));
        var seen = child.Read<uint>(buf, n);
        Assert.All(seen, v => Assert.True(v is 0xAA or 0xBB, $"child sees 0x{v:x}"));
        // Later GPU writes of the parent never reach the child's copy.
        Assert.True(ctx.Wait(ctx.Fill(buf, n, 0xCC)).IsOk);
        Assert.Equal(seen, child.Read<uint>(buf, n));
        Assert.All(p.Read<uint>(buf, n), v => Assert.Equal(0xCCu, v));
        child.Exit();
    }

    /// <summary>Munmap of a buffer a kernel is using: a cancelled fault, a clear per-context error, no host exception.</summary>
    public static void MunmapDuringUse(Process p, GpuDevice gpu)
    {
        const int n = 64 * 1024;
        ulong buf = p.MapAnonymous(n * 4UL);
        var ctx = gpu.Open(p);
        var fence = ctx.Fill(buf, n, 7);
        Assert.Equal(Errno.Ok, p.Mm.Munmap(buf, n * 4UL));
        var status = ctx.Wait(fence);
        if (status.IsOk)
        {
            // Real threads can finish the whole kernel between the launch and the munmap; a deterministic run
            // cannot (the user thread does not yield in between), so there the cancelled fault is required.
            Assert.Equal(HmmEmu.Simulation.SchedulerMode.Threaded, p.Kernel.Scheduler.Mode);
        }
        else
        {
            Assert.Equal(GpuContextError.FaultCancelled, status.Error);
            Assert.InRange(status.Address, buf, buf + (n * 4UL) - 1);
            Assert.Contains("not mapped", status.Message);
            Assert.False(ctx.Synchronize().IsOk);        // the error is sticky
        }
        // A new context of the same process works.
        ulong other = p.MapAnonymous(4096);
        var ctx2 = gpu.Open(p);
        Assert.True(ctx2.Wait(ctx2.Fill(other, 1024, 9)).IsOk);
        Assert.All(p.Read<uint>(other, 1024), v => Assert.Equal(9u, v));
    }

    /// <summary>Mprotect(READ) then a GPU write: cancelled with a permission error, the data unchanged.</summary>
    public static void MprotectThenWrite(Process p, GpuDevice gpu)
    {
        ulong buf = p.MapAnonymous(4 * 4096);
        var ctx = gpu.Open(p);
        Assert.True(ctx.Wait(ctx.Fill(buf, 4096, 1)).IsOk);    // mapped writable on the GPU
        Assert.Equal(Errno.Ok, p.Mm.Mprotect(buf, 4 * 4096, Prot.Read));
        Assert.False(ctx.HasMapping(buf), "mprotect must remove the GPU's writable mapping");
        var status = ctx.Wait(ctx.Fill(buf, 4096, 2));
        Assert.Equal(GpuContextError.FaultCancelled, status.Error);
        Assert.Contains("does not allow a write", status.Message);
        Assert.All(p.Read<uint>(buf, 4096), v => Assert.Equal(1u, v));
    }
}
