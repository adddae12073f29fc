using HmmEmu.Gpu.Driver;
using HmmEmu.Gpu.Model;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;

namespace HmmEmu.Gpu.Tests;

/// <summary>
/// A kernel, a PCI bus, a <see cref="GpuModel"/> in slot 0 and the <see cref="GpuDriver"/> bound to it:
/// <c>using var m = GpuMachine.Create(); m.RunProcess("app", (p, gpu) => { ... });</c>.
/// </summary>
internal sealed class GpuMachine : IDisposable
{
    public const int Slot = 0;

    private GpuMachine(ulong seed, SchedulerMode mode, GpuModelOptions? model, ulong ramBytes, GpuDriverOptions? driver)
    {
        Kernel = new HostKernel(KernelOptions.For(seed, mode) with { RamBytes = ramBytes });
        Bus = new PciBus(Kernel);
        Model = new GpuModel(Kernel, model);
        Driver = new GpuDriver(Kernel, driver);
    }

    public HostKernel Kernel { get; }

    public PciBus Bus { get; }

    public GpuModel Model { get; }

    public GpuDriver Driver { get; }

    public GpuDevice Device => Driver.Devices[0];

    /// <summary>Device-level errors the driver saw during the last <see cref="RunProcess"/>.</summary>
    public long DeviceErrors { get; private set; }

    public static GpuMachine Create(SchedulerMode mode = SchedulerMode.Deterministic, ulong seed = 1,
        GpuModelOptions? model = null, ulong ramBytes = 64UL << 20, GpuDriverOptions? driver = null) =>
        new(seed, mode, model ?? GpuModelOptions.Default with { VramBytes = 4UL << 20 }, ramBytes, driver);

    /// <summary>
    /// Boots the machine (plug, bind), runs <paramref name="body"/> on a user thread of a fresh process with the GPU,
    /// exits the process, unbinds, and checks the kernel raised no warning (lockdep included) and the device reported
    /// no device-level error.
    /// </summary>
    public void RunProcess(string name, Action<Process, GpuDevice> body, bool allowDeviceErrors = false)
    {
        Kernel.Run(() =>
        {
            Bus.Plug(Slot, Model);
            if (Bus.RegisterDriver(Driver) != 1)
                throw new InvalidOperationException("The GPU driver did not bind.");
            var p = Kernel.CreateProcess(name);
            p.StartThread("main", () =>
            {
                body(p, Device);
                p.Exit();
            }).Join();
            Kernel.SystemWorkQueue.Flush();
            DeviceErrors = Device.DeviceErrors;
            Bus.UnregisterDriver(Driver);
        });
        Kernel.AssertNoWarnings();
        if (!allowDeviceErrors && DeviceErrors != 0)
            throw new InvalidOperationException($"The GPU reported {DeviceErrors} device-level error(s) during a run that expects none.");
    }

    public void Dispose()
    {
        Bus.Dispose();
        Model.Dispose();
        Kernel.Dispose();
    }
}
