using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Vm;
using MyDevice.Driver;
using MyDevice.Model;

namespace MyDevice.Tests;

/// <summary>A kernel, one process, and the device on a PCI bus of its own with the driver bound to it.</summary>
public sealed class MyDevMachine : IDisposable
{
    private MyDevMachine(HostKernel kernel, PciBus bus, MyDevModel model, MyDevDriver driver)
    {
        Kernel = kernel;
        Bus = bus;
        Model = model;
        Driver = driver;
        Process = kernel.CreateProcess("test");
    }

    /// <summary>The simulated kernel.</summary>
    public HostKernel Kernel { get; }

    /// <summary>The bus the device sits on.</summary>
    public PciBus Bus { get; }

    /// <summary>The device model (for tests to look at the hardware's side).</summary>
    public MyDevModel Model { get; }

    /// <summary>The driver, bound to the device.</summary>
    public MyDevDriver Driver { get; }

    /// <summary>The bound device.</summary>
    public MyDevDevice Device => Driver.Devices[0];

    /// <summary>The process the tests run in.</summary>
    public Process Process { get; }

    /// <summary>Boots a kernel with <paramref name="seed"/>, plugs the device in and binds the driver.</summary>
    public static MyDevMachine Boot(ulong seed = 1)
    {
        var kernel = new HostKernel(KernelOptions.For(seed));
        var (bus, model, driver) = Plug(kernel, "pci-mydev");
        return new MyDevMachine(kernel, bus, model, driver);
    }

    /// <summary>Plugs a new device into a new bus on <paramref name="kernel"/> and binds a new driver to it.</summary>
    public static (PciBus Bus, MyDevModel Model, MyDevDriver Driver) Plug(HostKernel kernel, string busName)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var model = new MyDevModel();
        var bus = new PciBus(kernel, busName);
        var driver = new MyDevDriver(kernel);
        kernel.Run(() =>
        {
            bus.Plug(0, model);
            if (bus.RegisterDriver(driver) != 1)
                throw new InvalidOperationException($"the driver did not bind to the device on {busName}");
        });
        return (bus, model, driver);
    }

    /// <summary>Runs <paramref name="body"/> on a new thread of the process until the machine is quiescent.</summary>
    public void OnProcess(Action body) => Kernel.Run(() => Process.StartThread("main", body).Join());

    /// <summary>Maps <paramref name="pages"/> private anonymous read-write pages. Call it on a process thread.</summary>
    public ulong MapAnon(int pages) => Process.Map((ulong)pages * PhysicalMemory.PageSize, Prot.Read | Prot.Write, MapFlags.PrivateAnonymous);

    /// <inheritdoc />
    public void Dispose()
    {
        Bus.Dispose();
        Kernel.Dispose();
    }
}
