using HmmEmu.Hardware.Interrupts;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Interrupts;

/// <summary>The interrupt table plugged into the kernel's bus: device raise, driver handler, mask and replay through MMIO.</summary>
public sealed class MsixBusTests
{
    private static HostKernel NewKernel(SchedulerMode mode) =>
        new(KernelOptions.For(3, mode) with { RamBytes = 4UL << 20 });

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Raise_DeviceSetsStatusAndRaises_DriverHandlerAcknowledgesIt(SchedulerMode mode)
    {
        using var kernel = NewKernel(mode);
        using var bus = new PciBus(kernel);
        var device = new MsixTestDevice();
        var driver = new MsixTestDriver();

        kernel.Run(() =>
        {
            bus.Plug(0, device);
            bus.RegisterDriver(driver);
            device.Status.SetBits(0x1);
            device.Msix.Raise(0);
            bus.SynchronizeInterrupts();
        });

        Assert.Equal(1, driver.Handled);
        Assert.Equal(0UL, device.Status.Value);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Unmask_DriverUnmasksThroughBar_PendingInterruptDeliveredOnce(SchedulerMode mode)
    {
        using var kernel = NewKernel(mode);
        using var bus = new PciBus(kernel);
        var device = new MsixTestDevice(maskedAtReset: true);
        var driver = new MsixTestDriver();
        int handledWhileMasked = -1;

        kernel.Run(() =>
        {
            bus.Plug(0, device);
            bus.RegisterDriver(driver);
            device.Msix.Raise(1);
            device.Msix.Raise(1);
            bus.SynchronizeInterrupts();
            handledWhileMasked = driver.Handled;
            driver.Bar0!.Write32(MsixTestDevice.TableOffset + 4, 0);
            bus.SynchronizeInterrupts();
        });

        Assert.Equal(0, handledWhileMasked);
        Assert.Equal([1], driver.Vectors);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Raise_DeviceWorkerThreadRaisesMany_EachHandledOnce(SchedulerMode mode)
    {
        using var kernel = NewKernel(mode);
        using var bus = new PciBus(kernel);
        var device = new MsixTestDevice();
        var driver = new MsixTestDriver();

        kernel.Run(() =>
        {
            bus.Plug(0, device);
            bus.RegisterDriver(driver);
            var worker = kernel.Scheduler.Spawn("device-engine", () =>
            {
                for (int i = 0; i < 500; i++)
                {
                    device.Msix.Raise(i % 4);
                    kernel.Scheduler.Yield();
                }
            });
            worker.Join();
            bus.SynchronizeInterrupts();
        });

        Assert.Equal(500, driver.Handled);
        Assert.Equal(0, bus.SpuriousInterrupts);
    }
}
