namespace HmmEmu.Kernel.Bus;

/// <summary>
/// An interrupt handler registered with <see cref="PciDev.RequestIrq"/>. Runs in interrupt context: it must not
/// sleep (no mutex, no blocking allocation, no wait); defer such work to a work queue.
/// </summary>
/// <param name="vector">The vector that fired.</param>
public delegate IrqReturn IrqHandler(int vector);
