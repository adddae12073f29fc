using HmmEmu.Gpu.Driver;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Gpu.Tests;

// End-to-end checks beyond the scenarios (those are in GpuScenarios): user code → driver → model → HMM.
public sealed class GpuScenarioTests
{
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
            Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.AtomicAdd(counters, 64, 1000)));
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
    public void Launch_FourTimesMoreCommandsThanTheRingHolds_AllCompleteInOrder()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("overflow", (p, gpu) =>
        {
            const int launches = 4 * GpuDevice.CommandEntries;
            ulong buf = p.MapAnonymous(launches * 4UL);
            var ctx = gpu.Open(p);
            GpuFence last = default;
            for (int i = 0; i < launches; i++)
                last = ctx.Fill(buf + ((ulong)i * 4), 1, (uint)i + 1);
            Assert.Equal((ulong)launches, last.Value);
            Assert.Equal(GpuStatus.Success, ctx.Wait(last));
            var got = p.Read<uint>(buf, launches);
            for (int i = 0; i < launches; i++)
                Assert.Equal((uint)i + 1, got[i]);
            Assert.Equal(launches, ctx.Stats.Launches);
        });
    }

    [Fact]
    public void DriverRemoved_WhileContextHasWork_WaitReportsErrorAndNothingThrows()
    {
        using var m = GpuMachine.Create();
        GpuStatus status = default;
        GpuContext? ctx = null;
        m.Kernel.Run(() =>
        {
            m.Bus.Plug(GpuMachine.Slot, m.Model);
            Assert.Equal(1, m.Bus.RegisterDriver(m.Driver));
            var p = m.Kernel.CreateProcess("removed");
            var gpu = m.Device;
            p.StartThread("main", () =>
            {
                ulong buf = p.MapAnonymous(1UL << 20);
                ctx = gpu.Open(p);
                var fence = ctx.Fill(buf, (1UL << 20) / 4, 9);      // first-touch faults: still running below
                m.Bus.UnregisterDriver(m.Driver);
                status = ctx.Wait(fence);
                p.Exit();
            }).Join();
            m.Kernel.SystemWorkQueue.Flush();
        });
        m.Kernel.AssertNoWarnings();
        Assert.False(status.IsOk);
        Assert.True(ctx!.IsClosed);
        Assert.Equal(0, m.Bus.DmaPagesInUse);
    }

    [Fact]
    public void ContextId_ReusedAfterClose_FencesOfTheNewContextAreItsOwn()
    {
        using var m = GpuMachine.Create();
        m.RunProcess("reuse", (p, gpu) =>
        {
            ulong small = p.MapAnonymous(4096);
            var first = gpu.Open(p);
            for (int i = 0; i < 5; i++)
                first.Fill(small, 1, (uint)i);
            Assert.Equal(GpuStatus.Success, first.Synchronize());
            ushort id = first.Id;
            first.Close();

            const ulong bytes = 1UL << 20;
            ulong buf = p.MapAnonymous(bytes);
            var second = gpu.Open(p);
            Assert.Equal(id, second.Id);                       // the lowest free id: the same slot in the fence page
            // The slot still holds the first context's last value (5): a count restarting at 1 would be done at once.
            Assert.Equal(GpuStatus.Success, second.Wait(second.Fill(buf, bytes / 4, 0x11)));
            Assert.All(p.Read<uint>(buf, (int)(bytes / 4)), v => Assert.Equal(0x11u, v));
        });
    }

    [Fact]
    public void DriverRemoved_WithPagesInVram_CpuStillReadsTheirData()
    {
        using var m = GpuMachine.Create();
        uint[]? seen = null;
        m.Kernel.Run(() =>
        {
            m.Bus.Plug(GpuMachine.Slot, m.Model);
            Assert.Equal(1, m.Bus.RegisterDriver(m.Driver));
            var p = m.Kernel.CreateProcess("unbind-vram");
            var gpu = m.Device;
            p.StartThread("main", () =>
            {
                ulong buf = p.MapAnonymous(1UL << 20);
                var ctx = gpu.Open(p);
                Assert.Equal(Errno.Ok, ctx.Prefetch(buf, 1UL << 20, GpuMemoryTarget.Vram));
                Assert.Equal(GpuStatus.Success, ctx.Wait(ctx.Fill(buf, (1UL << 20) / 4, 0x5EED)));
                Assert.True(gpu.VramPages - gpu.FreeVramPages >= 256);
                m.Bus.UnregisterDriver(m.Driver);             // VRAM must be emptied first
                Assert.Equal(gpu.VramPages, gpu.FreeVramPages);
                seen = p.Read<uint>(buf, (int)((1UL << 20) / 4));
                p.Exit();
            }).Join();
            m.Kernel.SystemWorkQueue.Flush();
        });
        m.Kernel.AssertNoWarnings();
        Assert.All(seen!, v => Assert.Equal(0x5EEDu, v));
        Assert.Equal(0, m.Bus.DmaPagesInUse);
    }
}
