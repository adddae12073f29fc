using HmmEmu.Hardware.Dma;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>
/// A kernel, a PCI bus, an <see cref="EduDevice"/> in slot 0 and an <see cref="EduDriver"/>:
/// <c>using var m = EduMachine.Create(mode); m.Run(() => { m.Start(); ... });</c>.
/// </summary>
internal sealed class EduMachine : IDisposable
{
    public const int Slot = 0;

    private EduMachine(ulong seed, SchedulerMode mode, DmaEngineOptions? dma, ulong ramBytes)
    {
        Kernel = new HostKernel(KernelOptions.For(seed, mode) with { RamBytes = ramBytes });
        Bus = new PciBus(Kernel);
        Device = new EduDevice(Kernel, dma);
        Driver = new EduDriver(Kernel);
    }

    public HostKernel Kernel { get; }

    public PciBus Bus { get; }

    public EduDevice Device { get; }

    public EduDriver Driver { get; }

    public Scheduler Scheduler => Kernel.Scheduler;

    public static EduMachine Create(SchedulerMode mode = SchedulerMode.Deterministic, ulong seed = 1,
        DmaEngineOptions? dma = null, ulong ramBytes = 32UL << 20) =>
        new(seed, mode, dma, ramBytes);

    public void Run(Action body) => Kernel.Run(body);

    /// <summary>Plugs the device and registers the driver (which probes it). Call inside <see cref="Run"/>.</summary>
    public void Start()
    {
        Bus.Plug(Slot, Device);
        if (Bus.RegisterDriver(Driver) != 1)
            throw new InvalidOperationException("The edu driver did not bind.");
    }

    /// <summary>Allocates a DMA buffer of <paramref name="bytes"/> filled with a pattern derived from <paramref name="salt"/>.</summary>
    public DmaCoherentBuffer Pattern(int bytes, int salt)
    {
        var b = Driver.AllocBuffer((ulong)bytes);
        var span = b.Span;
        for (int i = 0; i < span.Length; i++)
            span[i] = (byte)((i * 7) + (i >> 8) + salt);
        return b;
    }

    /// <summary>Polls (sleeping in virtual time) until <paramref name="condition"/> holds. May sleep.</summary>
    public void WaitFor(Func<bool> condition, string what)
    {
        for (int i = 0; !condition(); i++)
        {
            if (i > 4_000_000)
                throw new TimeoutException($"Gave up waiting for {what}.");
            Scheduler.Sleep(200);
        }
    }

    public void Dispose()
    {
        Bus.Dispose();
        Device.Dispose();
        Kernel.Dispose();
    }
}
