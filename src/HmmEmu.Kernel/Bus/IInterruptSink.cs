namespace HmmEmu.Kernel.Bus;

/// <summary>
/// Where a device function sends its interrupt messages: the bus hands one to each function it plugs in
/// (<see cref="IPciDevice.Attach"/>). Raising never blocks and never runs the driver's handler on the raiser's
/// thread; the kernel delivers it later, in interrupt context.
/// </summary>
public interface IInterruptSink
{
    /// <summary>Sends an interrupt message for <paramref name="vector"/>. Never sleeps; safe from any thread.</summary>
    void Raise(int vector);
}
