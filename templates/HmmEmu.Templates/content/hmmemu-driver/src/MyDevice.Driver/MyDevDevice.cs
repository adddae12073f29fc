using HmmEmu.Annotations;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Locking;
using static MyDevice.MyDevRegisters;

namespace MyDevice.Driver;

/// <summary>
/// One bound device: opens mirrors of the calling process's address space (<see cref="Open"/>) and owns the
/// TLB-invalidation registers they share.
/// </summary>
public sealed class MyDevDevice
{
    private readonly PciBar _bar0;

    // Serialises the TLB_ADDR/TLB_SIZE/TLB_CMD/TLB_STATUS sequence between mirrors. A spinlock: it is taken inside
    // invalidate callbacks, also non-blockable ones, and nothing under it sleeps.
    private readonly KSpinLock _tlbLock;
    private int _removed;

    internal MyDevDevice(HostKernel kernel, PciDev pci, PciBar bar0)
    {
        Kernel = kernel;
        Pci = pci;
        _bar0 = bar0;
        _tlbLock = new KSpinLock(kernel, "mydev.tlb_lock");
    }

    /// <summary>The kernel the device's driver runs on.</summary>
    public HostKernel Kernel { get; }

    /// <summary>The PCI function: BARs and the DMA API.</summary>
    public PciDev Pci { get; }

    /// <summary>
    /// open(2) from the calling process thread: a mirror of its address space with an interval notifier over all of
    /// it. EBADF once the device is removed. Throws if called outside a thread of a simulated process. May sleep.
    /// </summary>
    public Errno Open(out MyDevContext? context)
    {
        context = null;
        if (Volatile.Read(ref _removed) != 0)
            return Errno.EBADF;
        var process = Kernel.CurrentProcess ?? throw new InvalidOperationException(
            $"{this}: Open must be called from a thread of a simulated process (Process.StartThread): the mirror binds to the caller's address space.");
        var c = new MyDevContext(this, process.Mm);
        var err = c.Register();
        if (err == Errno.Ok)
            context = c;
        return err;
    }

    /// <summary>
    /// Invalidates the device's translations of [<paramref name="start"/>, <paramref name="end"/>) and waits until the
    /// device reports it done: after this returns the device no longer uses them. Never sleeps.
    /// </summary>
    [TlbFlush]
    internal void InvalidateTlb(ulong start, ulong end)
    {
        using (_tlbLock.Scoped())
        {
            _bar0.Write64(TlbAddr, start);
            _bar0.Write64(TlbSize, end - start);
            _bar0.Write32(TlbCmd, TlbCmdInvalidateRange);
            uint status;
            while (((status = _bar0.Read32(TlbStatus)) & TlbStatusDone) == 0)
                Thread.SpinWait(1);
            if ((status & TlbStatusError) != 0)
                Kernel.Warn($"MyDev: the device refused the TLB invalidation of [0x{start:x}, 0x{end:x}).");
        }
    }

    /// <summary>Called by the PCI driver at unbind: no new opens. May sleep.</summary>
    internal void Remove() => Volatile.Write(ref _removed, 1);

    /// <inheritdoc />
    public override string ToString() => $"MyDev at slot {Pci.Slot}";
}
