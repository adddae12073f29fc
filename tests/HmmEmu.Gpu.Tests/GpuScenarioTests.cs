using HmmEmu.Gpu.Driver;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Gpu.Tests;

// The scenarios, end to end: user code → driver → device model → HMM, results checked against the CPU.
public sealed class GpuScenarioTests
{
    public static TheoryData<ulong> Seeds()
    {
        var data = new TheoryData<ulong>();
        for (ulong s = 1; s <= 50; s++)
            data.Add(s);
        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Saxpy_FreshMemory_FirstTouchFaultsThenMatchesCpu(ulong seed)
    {
        using var m = GpuMachine.Create(seed: seed);
        m.RunProcess("saxpy", (p, gpu) =>
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
        });
    }

    [Fact]
    public void Saxpy_SecondRun_NoNewFaults()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("saxpy2", (p, gpu) =>
        {
            const int n = 4096;
            ulong x = p.MapAnonymous(n * 4UL), y = p.MapAnonymous(n * 4UL);
            p.Write<float>(x, Enumerable.Repeat(1f, n).ToArray());
            p.Write<float>(y, new float[n]);
            var ctx = gpu.Open(p);
            Assert.True(ctx.Wait(ctx.Saxpy(y, x, n, 1f)).IsOk);
            long faults = ctx.Stats.Faults;
            Assert.True(ctx.Wait(ctx.Saxpy(y, x, n, 1f)).IsOk);
            Assert.Equal(faults, ctx.Stats.Faults);
            Assert.All(p.Read<float>(y, n), v => Assert.Equal(2f, v));
        });
    }

    [Fact]
    public void Kernels_AllSix_MatchCpu()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("kernels", (p, gpu) =>
        {
            var ctx = gpu.Open(p);
            const int n = 2500;
            ulong a = p.MapAnonymous(n * 4UL), b = p.MapAnonymous(n * 4UL), sum = p.MapAnonymous(8);
            Assert.True(ctx.Wait(ctx.Fill(a, n, 0xC0FFEE)).IsOk);
            Assert.All(p.Read<uint>(a, n), v => Assert.Equal(0xC0FFEEu, v));

            var src = Enumerable.Range(0, n).Select(i => (uint)(i * 2654435761u)).ToArray();
            p.Write<uint>(a, src);
            Assert.True(ctx.Wait(ctx.Copy(b, a, n * 4UL)).IsOk);
            Assert.Equal(src, p.Read<uint>(b, n));

            Assert.True(ctx.Wait(ctx.ReduceSum(sum, a, n)).IsOk);
            ulong expected = 0;
            foreach (uint v in src)
                expected += v;
            Assert.Equal(expected, p.ReadU64(sum));

            ulong counters = p.MapAnonymous(64 * 8);
            p.Write<ulong>(counters, Enumerable.Range(0, 64).Select(i => (ulong)i).ToArray());
            Assert.True(ctx.Wait(ctx.AtomicAdd(counters, 64, 1000)).IsOk);
            Assert.Equal(Enumerable.Range(0, 64).Select(i => (ulong)i + 1000).ToArray(), p.Read<ulong>(counters, 64));

            // A linked list across pages: node i points to node (i * 37 + 11) % 512, 8 KiB-ish apart.
            ulong nodes = p.MapAnonymous(512 * 4096);
            for (ulong i = 0; i < 512; i++)
                p.Write<ulong>(nodes + (i * 4096), [nodes + (((i * 37) + 11) % 512 * 4096)]);
            ulong cpu = nodes;
            for (int s = 0; s < 300; s++)
                cpu = p.ReadU64(cpu);
            Assert.True(ctx.Wait(ctx.PointerChase(nodes, 300, sum)).IsOk);
            Assert.Equal(cpu, p.ReadU64(sum));
        });
    }

    [Fact]
    public void PingPong_CpuAndGpuAlternate_EachSeesTheOthersWrites()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("pingpong", (p, gpu) =>
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
            // CPU reads and writes of pages both map do not change the CPU's page table: the GPU keeps its mappings.
            Assert.Equal(faultsAfterFirstRound, ctx.Stats.Faults);
            Assert.Equal(0, ctx.Stats.Invalidations);
        });
    }

    [Fact]
    public void Munmap_WhileKernelUsesBuffer_ContextReportsCancelledFault()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("munmap", (p, gpu) =>
        {
            const int n = 64 * 1024;
            ulong buf = p.MapAnonymous(n * 4UL);
            var ctx = gpu.Open(p);
            var fence = ctx.Fill(buf, n, 7);
            Assert.Equal(Errno.Ok, p.Mm.Munmap(buf, n * 4UL));
            var status = ctx.Wait(fence);
            Assert.Equal(GpuContextError.FaultCancelled, status.Error);
            Assert.InRange(status.Address, buf, buf + (n * 4UL) - 1);
            Assert.Contains("not mapped", status.Message);
            // The error is sticky; a new context of the same process works.
            Assert.False(ctx.Synchronize().IsOk);
            ulong other = p.MapAnonymous(4096);
            var ctx2 = gpu.Open(p);
            Assert.True(ctx2.Wait(ctx2.Fill(other, 1024, 9)).IsOk);
            Assert.All(p.Read<uint>(other, 1024), v => Assert.Equal(9u, v));
        });
    }

    [Fact]
    public void Mprotect_ReadOnlyThenGpuWrite_CancelledWithPermissionError()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("mprotect", (p, gpu) =>
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
        });
    }

    [Fact]
    public void Fork_WhileKernelRuns_ChildKeepsItsCopy()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("fork", (p, gpu) =>
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
        });
    }

    [Fact]
    public void BadArguments_FailOnlyTheirContext()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("badargs", (p, gpu) =>
        {
            ulong buf = p.MapAnonymous(4096);
            var bad = gpu.Open(p);
            var good = gpu.Open(p);
            var s1 = bad.Wait(bad.Fill(buf + 2, 4, 1));               // misaligned u32 pointer
            Assert.Equal(GpuContextError.BadArgument, s1.Error);
            Assert.True(good.Wait(good.Fill(buf, 1024, 5)).IsOk);
            var bad2 = gpu.Open(p);
            var s2 = bad2.Wait(bad2.Fill(1UL << 50, 4, 1));          // outside the 48-bit space
            Assert.Equal(GpuContextError.AddressOutOfRange, s2.Error);
            Assert.All(p.Read<uint>(buf, 1024), v => Assert.Equal(5u, v));
        });
    }

    [Fact]
    public void ProcessExit_WithOpenContext_TearsItDown()
    {
        using var m = GpuMachine.Create();
        GpuContext? ctx = null;
        m.RunProcess("exit", (p, gpu) =>
        {
            ulong buf = p.MapAnonymous(8 * 4096);
            ctx = gpu.Open(p);
            Assert.True(ctx.Wait(ctx.Fill(buf, 8 * 1024, 3)).IsOk);
        });
        Assert.True(ctx!.IsClosed, "process exit must close the context");
        Assert.Equal(0, m.Bus.DmaPagesInUse);
    }

    [Fact]
    public void Reset_MidKernel_ContextReportsDeviceResetAndNewContextWorks()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("reset", (p, gpu) =>
        {
            const int n = 256 * 1024;
            ulong buf = p.MapAnonymous(n * 4UL);
            var ctx = gpu.Open(p);
            var fence = ctx.Fill(buf, n, 1);
            gpu.Reset();
            var status = ctx.Wait(fence);
            Assert.Equal(GpuContextError.DeviceReset, status.Error);   // 1 MiB of first-touch faults: still running
            Assert.Equal(1, gpu.Resets);
            var fresh = gpu.Open(p);
            Assert.True(fresh.Wait(fresh.Fill(buf, 1024, 4)).IsOk);
            Assert.All(p.Read<uint>(buf, 1024), v => Assert.Equal(4u, v));
        });
    }

    [Fact]
    public void Saxpy_ThreadedMode_Repeatedly()
    {
        for (int run = 0; run < 5; run++)
        {
            using var m = GpuMachine.Create(SchedulerMode.Threaded, seed: (ulong)run + 1);
            m.RunProcess("threaded", (p, gpu) =>
            {
                const int n = 8 * 1024;
                ulong x = p.MapAnonymous(n * 4UL), y = p.MapAnonymous(n * 4UL);
                var xs = Enumerable.Range(0, n).Select(i => (float)(i % 17)).ToArray();
                p.Write<float>(x, xs);
                p.Write<float>(y, Enumerable.Repeat(3f, n).ToArray());
                var ctx = gpu.Open(p);
                Assert.True(ctx.Wait(ctx.Saxpy(y, x, n, -1f)).IsOk);
                var got = p.Read<float>(y, n);
                for (int i = 0; i < n; i++)
                    Assert.Equal(3f - xs[i], got[i]);
            });
        }
    }
}
