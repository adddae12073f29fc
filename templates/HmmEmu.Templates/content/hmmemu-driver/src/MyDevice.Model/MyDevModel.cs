using HmmEmu.Hardware.Registers;
using HmmEmu.Kernel.Bus;
using static MyDevice.MyDevRegisters;

namespace MyDevice.Model;

/// <summary>
/// The device as the bus sees it: BAR0 is a <see cref="RegisterFile"/> laid out as <see cref="MyDevRegisters"/> says,
/// with the TLB-invalidation registers. The device has no engines yet: its TLB is a counter of completed
/// invalidations, and an invalidation completes as TLB_CMD is written. Replace that with your device's engines (a DMA
/// engine, a device MMU and TLB from HmmEmu.Hardware) and keep the register contract.
/// </summary>
/// <remarks>Bad programming never throws into the driver: a refused TLB_CMD sets TLB_STATUS.ERROR.</remarks>
public sealed class MyDevModel : IPciDevice
{
    private readonly Register _tlbAddr;
    private readonly Register _tlbSize;
    private long _invalidations;
    private int _lastCommandRefused;

    /// <summary>Creates the device with every register at its reset value.</summary>
    public MyDevModel()
    {
        Bar0 = new RegisterFile("mydev.bar0", Bar0Size);
        Bar0.Define32(Id, "ID", "Identity.", reset: IdValue);
        _tlbAddr = Bar0.Define64(TlbAddr, "TLB_ADDR", "First address of the next invalidation.", readWrite: ~0UL);
        _tlbSize = Bar0.Define64(TlbSize, "TLB_SIZE", "Bytes of the next invalidation.", readWrite: ~0UL);
        Bar0.Define32(TlbCmd, "TLB_CMD", "1 starts a range invalidation; anything else is refused.",
            writeOnly: ~0u, onWrite: (written, _) => OnTlbCommand((uint)written));
        Bar0.Define32(TlbStatus, "TLB_STATUS", "DONE [0], ERROR [1].",
            onRead: _ => TlbStatusDone | (Volatile.Read(ref _lastCommandRefused) != 0 ? TlbStatusError : 0));
        Bar0.Define64(TlbInvalidations, "TLB_INVALIDATIONS", "Invalidations completed since reset.",
            onRead: _ => (ulong)Interlocked.Read(ref _invalidations));
        Bars = [Bar0];
    }

    /// <summary>BAR0's registers.</summary>
    public RegisterFile Bar0 { get; }

    /// <summary>Invalidations completed since the device was created or reset.</summary>
    public long Invalidations => Interlocked.Read(ref _invalidations);

    /// <inheritdoc />
    public ushort VendorId => MyDevRegisters.VendorId;

    /// <inheritdoc />
    public ushort DeviceId => MyDevRegisters.DeviceId;

    /// <inheritdoc />
    public uint ClassCode => 0x00ff00;

    /// <inheritdoc />
    public IReadOnlyList<IMmio?> Bars { get; }

    /// <inheritdoc />
    public int VectorCount => 0;

    /// <summary>The device raises no interrupts yet: nothing to connect.</summary>
    public void Attach(IInterruptSink interrupts)
    {
    }

    /// <summary>Function-level reset: every register returns to its reset value and the counters to zero.</summary>
    public void FunctionLevelReset()
    {
        Bar0.Reset();
        Interlocked.Exchange(ref _invalidations, 0);
        Volatile.Write(ref _lastCommandRefused, 0);
    }

    // A TLB_CMD write: a range invalidation completes at once (the device has no DMA in flight to drain).
    private void OnTlbCommand(uint command)
    {
        ulong addr = _tlbAddr.Value, size = _tlbSize.Value;
        bool ok = command == TlbCmdInvalidateRange && size != 0 && addr + size > addr;
        Volatile.Write(ref _lastCommandRefused, ok ? 0 : 1);
        if (ok)
            Interlocked.Increment(ref _invalidations);
    }
}
