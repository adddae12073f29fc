using HmmEmu.Gpu.Driver;
using HmmEmu.Rnic.Driver;
using HmmEmu.Simulation;

namespace HmmEmu.Rnic.Tests;

// An ODP MR over a buffer whose pages live in GPU VRAM: the NIC driver's hmm_range_fault finds device-private pages
// of another owner and migrates them back to RAM through the GPU driver's migrate_to_ram, and the data arrives intact.
public sealed class RnicCrossDeviceTests
{
    [Fact]
    public void Odp_mr_over_gpu_resident_pages_holds_for_50_seeds_and_threaded()
    {
        for (ulong seed = 1; seed <= 50; seed++)
            RunOnce(SchedulerMode.Deterministic, seed);
        for (ulong run = 1; run <= 3; run++)
            RunOnce(SchedulerMode.Threaded, run);
    }

    private static void RunOnce(SchedulerMode mode, ulong seed)
    {
        try
        {
            Run(mode, seed);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"The cross-device scenario failed in {mode} mode with seed {seed} (replay: that seed alone).", e);
        }
    }

    private static void Run(SchedulerMode mode, ulong seed)
    {
        using var machine = RnicMachine.Create(mode, seed, withGpu: true);
        machine.Run(m =>
        {
            const int Bytes = 64 * 1024;
            var gpu = m.GpuDriver!.Devices[0].Open(m.A);
            ulong buf = RnicMachine.Map(m.A, Bytes), dst = RnicMachine.Map(m.B, 2 * Bytes);
            RnicMachine.Fill(m.A, buf, Bytes, 21);
            var expected = RnicMachine.Read(m.A, buf, Bytes);
            Assert.Equal(HmmEmu.Kernel.Errno.Ok, gpu.Prefetch(buf, Bytes, GpuMemoryTarget.Vram));
            Assert.Equal(Bytes / 4096, gpu.Stats.MigratedToVram);
            Assert.Equal(Bytes / 4096, DevicePrivatePages(m, buf, Bytes));

            var pair = m.Connect();
            RnicMachine.Check(m.Ca.RegMr(pair.PdA, buf, Bytes, RnicScenarios.Remote | RnicAccessFlags.OnDemand, out var mrA));
            RnicMachine.Check(m.Cb.RegMr(pair.PdB, dst, 2 * Bytes, RnicScenarios.Remote, out var mrB));
            RnicMachine.Check(m.Ca.PostSend(pair.QpA, new IbvSendWr(1, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled,
                [new RnicSge(buf, Bytes, mrA!.Lkey)], dst, mrB!.Rkey)));
            Assert.Equal(RnicWcStatus.Success, m.WaitCompletion(m.Ca, pair.CqA).Status);
            Assert.Equal(expected, RnicMachine.Read(m.B, dst, Bytes));
            Assert.Equal(0, DevicePrivatePages(m, buf, Bytes));

            // Back to VRAM, then an RDMA READ lands in the buffer: the NIC's write fault brings the pages back again.
            Assert.Equal(HmmEmu.Kernel.Errno.Ok, gpu.Prefetch(buf, Bytes, GpuMemoryTarget.Vram));
            Assert.Equal(Bytes / 4096, DevicePrivatePages(m, buf, Bytes));
            RnicMachine.Fill(m.B, dst + Bytes, Bytes, 88);
            RnicMachine.Check(m.Ca.PostSend(pair.QpA, new IbvSendWr(2, RnicWrOpcode.RdmaRead, RnicSendFlags.Signaled,
                [new RnicSge(buf, Bytes, mrA.Lkey)], dst + Bytes, mrB.Rkey)));
            Assert.Equal(RnicWcStatus.Success, m.WaitCompletion(m.Ca, pair.CqA).Status);
            Assert.Equal(0, DevicePrivatePages(m, buf, Bytes));
            Assert.Equal(RnicMachine.Read(m.B, dst + Bytes, Bytes), RnicMachine.Read(m.A, buf, Bytes));
            gpu.Close();
        });
    }

    // Pages of [address, +bytes) whose CPU entry points at device-private memory (the GPU's VRAM).
    private static int DevicePrivatePages(RnicMachine m, ulong address, int bytes)
    {
        int n = 0;
        for (ulong va = address; va < address + (ulong)bytes; va += 4096)
        {
            if (m.A.Mm.GetPte(va).IsDevicePrivate)
                n++;
        }
        return n;
    }
}
