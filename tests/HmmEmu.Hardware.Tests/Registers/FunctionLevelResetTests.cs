using HmmEmu.Hardware.Interrupts;
using HmmEmu.Hardware.Tests.Interrupts;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;

namespace HmmEmu.Hardware.Tests.Registers;

/// <summary>A function-level reset issued through the bus returns a register-file device to its reset state.</summary>
public sealed class FunctionLevelResetTests
{
    [Fact]
    public void FunctionLevelReset_AfterDriverWrites_RegistersReadResetValues()
    {
        using var kernel = new HostKernel(KernelOptions.For(1) with { RamBytes = 4UL << 20 });
        using var bus = new PciBus(kernel);
        var device = new MsixTestDevice();
        var driver = new MsixTestDriver();
        uint scratch = 0, vectorCtrl = 0;

        kernel.Run(() =>
        {
            bus.Plug(0, device);
            bus.RegisterDriver(driver);
            driver.Bar0!.Write32(MsixTestDevice.ScratchOffset, 0x1234_5678);
            driver.Bar0.Write32(MsixTestDevice.TableOffset, MsixTable.VectorControlMask);
            driver.Dev!.FunctionLevelReset();
            scratch = driver.Bar0.Read32(MsixTestDevice.ScratchOffset);
            vectorCtrl = driver.Bar0.Read32(MsixTestDevice.TableOffset);
        });

        Assert.Equal(0x5a5au, scratch);
        Assert.Equal(0u, vectorCtrl);
    }

    [Fact]
    public void FunctionLevelReset_PendingInterrupt_IsDiscarded()
    {
        using var kernel = new HostKernel(KernelOptions.For(1) with { RamBytes = 4UL << 20 });
        using var bus = new PciBus(kernel);
        var device = new MsixTestDevice();
        var driver = new MsixTestDriver();

        kernel.Run(() =>
        {
            bus.Plug(0, device);
            bus.RegisterDriver(driver);
            device.Msix.SetMasked(0, true);
            device.Msix.Raise(0);
            bus.FunctionLevelReset(0);
            bus.SynchronizeInterrupts();
        });

        Assert.False(device.Msix.IsPending(0));
        Assert.Equal(0, driver.Handled);
    }
}
