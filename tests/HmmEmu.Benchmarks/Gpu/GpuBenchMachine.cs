using System.Runtime.InteropServices;
using HmmEmu.Gpu.Driver;
using HmmEmu.Gpu.Model;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Benchmarks.Gpu;

/// <summary>
/// A threaded-mode kernel with a PCI bus, a <see cref="GpuModel"/> in slot 0, the <see cref="GpuDriver"/> bound to it,
/// one process and one GPU context of it, driven from the benchmark's own (host) thread, as the other benchmark
/// machines are: the machine boots once per <c>GlobalSetup</c>, so no measurement includes the boot. The lock checker
/// is off, as in the other benchmarks.
/// </summary>
internal sealed class GpuBenchMachine : IDisposable
{
    private const int Slot = 0;

    public GpuBenchMachine(ulong ramBytes, ulong vramBytes)
    {
        Kernel = new HostKernel(KernelOptions.For(1, SchedulerMode.Threaded) with { Lockdep = false, RamBytes = ramBytes });
        Bus = new PciBus(Kernel);
        Model = new GpuModel(Kernel, GpuModelOptions.Default with { VramBytes = vramBytes });
        Driver = new GpuDriver(Kernel);
        Bus.Plug(Slot, Model);
        if (Bus.RegisterDriver(Driver) != 1)
            throw new InvalidOperationException("The GPU driver did not bind.");
        Process = Kernel.CreateProcess("bench");
        Context = Device.Open(Process);
    }

    public HostKernel Kernel { get; }

    public PciBus Bus { get; }

    public GpuModel Model { get; }

    public GpuDriver Driver { get; }

    public GpuDevice Device => Driver.Devices[0];

    public Process Process { get; }

    public GpuContext Context { get; }

    /// <summary>Maps <paramref name="bytes"/> (a multiple of 4 KiB) of private anonymous memory, not touched.</summary>
    public ulong MapAnonymous(ulong bytes) => Process.Map(bytes, Prot.ReadWrite, MapFlags.PrivateAnonymous);

    /// <summary>Unmaps what <see cref="MapAnonymous"/> mapped.</summary>
    public void Unmap(ulong address, ulong bytes)
    {
        var err = Process.Mm.Munmap(address, bytes);
        if (err != Errno.Ok)
            throw new InvalidOperationException($"munmap 0x{address:x}: {err}");
    }

    /// <summary>Writes <paramref name="values"/> at <paramref name="address"/> through the CPU's page tables.</summary>
    public void Write<T>(ulong address, ReadOnlySpan<T> values) where T : unmanaged =>
        Process.WriteBytes(address, MemoryMarshal.AsBytes(values));

    /// <summary>Reads one value at <paramref name="address"/> through the CPU's page tables (a VRAM page comes back).</summary>
    public T Read<T>(ulong address) where T : unmanaged
    {
        Span<T> one = stackalloc T[1];
        Process.ReadBytes(address, MemoryMarshal.AsBytes(one));
        return one[0];
    }

    /// <summary>Waits for <paramref name="fence"/> and throws unless the context reports success.</summary>
    public void WaitOk(GpuFence fence)
    {
        var status = Context.Wait(fence);
        if (!status.IsOk)
            throw new InvalidOperationException($"The GPU kernel failed: {status}");
    }

    /// <summary>Prefetches and throws unless it succeeded.</summary>
    public void PrefetchOk(ulong address, ulong bytes, GpuMemoryTarget target)
    {
        var err = Context.Prefetch(address, bytes, target);
        if (err != Errno.Ok)
            throw new InvalidOperationException($"Prefetch of 0x{address:x}+0x{bytes:x} to {target}: {err}");
    }

    /// <summary>Checks the device reported no device-level error and the kernel raised no warning.</summary>
    public void AssertHealthy()
    {
        if (Device.DeviceErrors != 0)
            throw new InvalidOperationException($"The GPU reported {Device.DeviceErrors} device-level error(s).");
        Kernel.AssertNoWarnings();
    }

    public void Dispose()
    {
        Context.Close();
        Bus.UnregisterDriver(Driver);
        Bus.Dispose();
        Model.Dispose();
        Kernel.Dispose();
    }
}
