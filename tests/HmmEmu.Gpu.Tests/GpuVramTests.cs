using HmmEmu.Gpu.Driver;
using HmmEmu.Gpu.Model;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Gpu.Tests;

// VRAM residency: prefetch each way, CPU touches bringing pages back, eviction when VRAM is full, migrate-on-fault.
public sealed class GpuVramTests
{
    private const ulong MiB = 1UL << 20;

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
    public void AFreshMappingAtAReusedAddress_MigratesOnFirstFaultEveryTime()
    {
        // The thrashing limit counts migrations of one window while it stays mapped. munmap ends the window's history:
        // a buffer mapped again at the same address is new memory, and first touch must move it to VRAM again (a
        // process that allocates and frees buffers reuses addresses all the time).
        const int rounds = 6;                                      // more than ThrashMigrations (4)
        using var m = GpuMachine.Create();
        m.RunProcess("remap", (p, gpu) =>
        {
            var ctx = gpu.Open(p);
            ulong first = 0;
            for (int round = 0; round < rounds; round++)
            {
                ulong buf = p.MapAnonymous(2 * MiB);
                if (round == 0)
                    first = buf;
                Assert.Equal(first, buf);                          // the same window each round, or this tests nothing
                long before = ctx.Stats.MigratedToVram;
                Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, (int)(2 * MiB / 4), (uint)round + 1)));
                Assert.Equal(before + 512, ctx.Stats.MigratedToVram);
                Assert.All(p.Read<uint>(buf, (int)(2 * MiB / 4)), v => Assert.Equal((uint)round + 1, v));
                Assert.Equal(Errno.Ok, p.Mm.Munmap(buf, 2 * MiB));
            }
        });
    }

    [Fact]
    public void AnUnmapWiderThanTheRemembered_ForgetsEveryWindowInIt()
    {
        // An 8 MiB munmap spans more windows than the context remembers (the forgetting scans its counts rather than
        // walking the range); each round the GPU touches the first window (and fault-ahead the next), then all is unmapped.
        const ulong bytes = 8 * MiB;
        using var m = GpuMachine.Create(model: GpuModelOptions.Default with { VramBytes = 16 * MiB },
            driver: GpuDriverOptions.Default with { ThrashMigrations = 1 });
        m.RunProcess("wide-unmap", (p, gpu) =>
        {
            var ctx = gpu.Open(p);
            ulong first = 0;
            long perRound = -1;
            for (int round = 0; round < 3; round++)
            {
                ulong buf = p.MapAnonymous(bytes);
                first = round == 0 ? buf : first;
                Assert.Equal(first, buf);
                long before = ctx.Stats.MigratedToVram;
                Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, (int)(2 * MiB / 4), 7)));
                long moved = ctx.Stats.MigratedToVram - before;
                Assert.True(moved >= 512, $"round {round}: the touched window moves to VRAM ({moved} pages)");
                perRound = round == 0 ? moved : perRound;
                Assert.Equal(perRound, moved);
                Assert.Equal(Errno.Ok, p.Mm.Munmap(buf, bytes));
            }
        });
    }

    [Fact]
    public void ManyUnmapsBeforeTheNextFault_ForgetEverything()
    {
        // More unmapped ranges than the context keeps waiting for the fault path: it then forgets every window's history,
        // so the window mapped again after them still migrates on its first fault.
        using var m = GpuMachine.Create(driver: GpuDriverOptions.Default with { ThrashMigrations = 1 });
        m.RunProcess("many-unmaps", (p, gpu) =>
        {
            var ctx = gpu.Open(p);
            ulong buf = p.MapAnonymous(2 * MiB);
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, (int)(2 * MiB / 4), 1)));
            Assert.Equal(512, ctx.Stats.MigratedToVram);
            for (int i = 0; i < 70; i++)
            {
                ulong small = p.MapAnonymous(4096);
                Assert.Equal(Errno.Ok, p.Mm.Munmap(small, 4096));
            }
            Assert.Equal(Errno.Ok, p.Mm.Munmap(buf, 2 * MiB));
            Assert.Equal(buf, p.MapAnonymous(2 * MiB));
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, (int)(2 * MiB / 4), 2)));
            Assert.Equal(1024, ctx.Stats.MigratedToVram);
            Assert.All(p.Read<uint>(buf, (int)(2 * MiB / 4)), v => Assert.Equal(2u, v));
        });
    }

    [Fact]
    public void AWindowTheCpuKeepsTakingBack_StopsMigratingAfterTheThrashLimit()
    {
        // The same window, still mapped, moved to VRAM by GPU faults and back by CPU reads, again and again: after
        // ThrashMigrations fault-driven migrations the context maps it where it lies instead of moving it once more.
        var driver = GpuDriverOptions.Default with { ThrashMigrations = 3 };
        using var m = GpuMachine.Create(driver: driver);
        m.RunProcess("thrash", (p, gpu) =>
        {
            ulong buf = p.MapAnonymous(2 * MiB);
            var ctx = gpu.Open(p);
            for (int round = 0; round < 5; round++)
            {
                Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, (int)(2 * MiB / 4), (uint)round + 1)));
                Assert.All(p.Read<uint>(buf, (int)(2 * MiB / 4)), v => Assert.Equal((uint)round + 1, v));  // back to system memory
            }
            Assert.Equal(3 * 512, ctx.Stats.MigratedToVram);
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

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void StreamingKernel_NextWindowIsMappedAhead_FewerFaultRoundTrips(int migrateAfterFaults)
    {
        var driver = GpuDriverOptions.Default with { FaultWindowPages = 16, MigrateAfterFaults = migrateAfterFaults };
        using var m = GpuMachine.Create(driver: driver);
        m.RunProcess("fault-ahead", (p, gpu) =>
        {
            const int windows = 16;                                    // 16 windows of 64 KiB
            ulong buf = p.MapAnonymous(windows * 64 * 1024);
            var ctx = gpu.Open(p);
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, windows * 16 * 1024, 0x3C)));
            var s = ctx.Stats;
            Assert.True(s.AheadWindows > 0, $"a streaming kernel gets windows mapped ahead: {s}");
            Assert.True(s.Batches < windows, $"fewer fault round trips than windows: {s}");
            Assert.All(p.Read<uint>(buf, windows * 16 * 1024), v => Assert.Equal(0x3Cu, v));
        });
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(3UL)]
    [InlineData(4UL)]
    public void AtomicFaults_WhileTheProcessKeepsInvalidatingElsewhere_AllResolve(ulong seed)
    {
        // System-memory atomics go through make_device_exclusive. Another thread's mprotects invalidate (elsewhere in
        // the process, but the one notifier sees them all) while the fault is being resolved: the retry must not
        // restore and re-make the exclusive entry each time (that livelocked until the fault timeout).
        var driver = GpuDriverOptions.Default with { MigrateAfterFaults = 0 };
        using var m = GpuMachine.Create(seed: seed, driver: driver);
        m.RunProcess("atomic-retry", (p, gpu) =>
        {
            const int launches = 12;
            ulong counters = p.MapAnonymous(4096), other = p.MapAnonymous(4096);
            p.Write<ulong>(counters, new ulong[512]);
            p.Write<ulong>(other, new ulong[512]);
            var ctx = gpu.Open(p);
            int done = 0;
            var noise = p.StartThread("mprotect", () =>
            {
                while (Volatile.Read(ref done) == 0)
                {
                    Assert.Equal(Errno.Ok, p.Mm.Mprotect(other, 4096, Prot.Read));
                    Assert.Equal(Errno.Ok, p.Mm.Mprotect(other, 4096, Prot.ReadWrite));
                    p.Write<ulong>(other, [1UL]);              // write fault: another invalidation-free change
                }
            });
            for (int k = 0; k < launches; k++)
            {
                Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.AtomicAdd(counters, 512, 1)));
                p.Write<ulong>(counters + 8, [p.ReadU64(counters + 8)]);   // the CPU takes the page back each round
            }
            Volatile.Write(ref done, 1);
            noise.Join();
            Assert.All(p.Read<ulong>(counters, 512), v => Assert.Equal((ulong)launches, v));
        });
    }

    [Fact]
    public void TwoContextsOfOneProcess_OneMigratesWhatTheOtherMaps_BothStayCoherent()
    {
        using var m = GpuMachine.Create(driver: GpuDriverOptions.Default with { MigrateAfterFaults = 0 });
        m.RunProcess("two-contexts", (p, gpu) =>
        {
            const int n = 64 * 1024;
            ulong buf = p.MapAnonymous(n * 4UL);
            var a = gpu.Open(p);
            var b = gpu.Open(p);
            Assert.Equal(GpuStatus.Success, b.Wait(b.Fill(buf, n, 1)));   // b maps the system pages
            Assert.Equal(Errno.Ok, a.Prefetch(buf, n * 4UL, GpuMemoryTarget.Vram));
            Assert.Equal(GpuStatus.Success, b.Wait(b.Fill(buf, n, 2)));   // b must not write to pages that moved
            Assert.Equal(GpuStatus.Success, a.Wait(a.ReduceSum(buf + (n * 4UL) - 8, buf, 16)));
            Assert.Equal(32UL, p.ReadU64(buf + (n * 4UL) - 8));            // a sees b's writes (16 × 2)
            var v = p.Read<uint>(buf, n - 2);
            Assert.All(v, e => Assert.Equal(2u, e));
        });
    }
}
