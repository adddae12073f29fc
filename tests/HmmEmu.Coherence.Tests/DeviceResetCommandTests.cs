using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;
using HmmEmu.Testing.Coherence;

namespace HmmEmu.Coherence.Tests;

public sealed class DeviceResetCommandTests
{
    [Fact]
    public void Aborts_FailedCommandOfTheSameDevice_OnlyThat()
    {
        var reset = new DeviceReset(0, 1);
        var failed = new CommandOutcome(Errno.EIO);

        Assert.True(reset.Aborts(new DeviceWrite(0, 1, 0, 1, 3), failed));
        Assert.False(reset.Aborts(new DeviceWrite(0, 0, 0, 1, 3), failed));          // another device
        Assert.False(reset.Aborts(new DeviceWrite(0, 1, 0, 1, 3), CommandOutcome.Ok));
        Assert.False(reset.Aborts(new CpuWrite(0, 0, 0, 3), failed));                // not a device command
    }

    [Fact]
    public void Apply_AbortedDeviceAtomic_KeepsTheOldValueAndAddsTheSum()
    {
        var memory = new IdealMemory();
        memory.AddProcess();
        memory.Map(0, 0, 1, Prot.ReadWrite);
        memory.Set(0, 0, 0, 10);

        new DeviceAtomicAdd(0, 0, 0, 5).Apply(memory, new CommandOutcome(Errno.EIO) { Aborted = true });

        Assert.Equal([10UL, 15UL], memory.Candidates(0, 0, 0).Order());
    }

    [Fact]
    public void Apply_FailedDeviceAtomicNotAborted_LeavesTheWord()
    {
        var memory = new IdealMemory();
        memory.AddProcess();
        memory.Map(0, 0, 1, Prot.ReadWrite);
        memory.Set(0, 0, 0, 10);

        new DeviceAtomicAdd(0, 0, 0, 5).Apply(memory, new CommandOutcome(Errno.EFAULT));

        Assert.Equal([10UL], memory.Candidates(0, 0, 0));
    }
}
