namespace HmmEmu.Kernel.Bus;

/// <summary>
/// The bus's record of one plugged-in function: the device, its BAR windows, and the driver binding if any.
/// It is also the interrupt sink the device raises through.
/// </summary>
internal sealed class PciFunction : IInterruptSink
{
    private PciDev? _binding;
    private volatile bool _unplugged;

    public PciFunction(PciBus bus, int slot, IPciDevice device)
    {
        Bus = bus;
        Slot = slot;
        Device = device;
        VectorCount = device.VectorCount;
        var bars = device.Bars;
        Bars = new PciBar?[bars.Count];
        for (int i = 0; i < bars.Count; i++)
            Bars[i] = bars[i] is { } mmio ? new PciBar(i, mmio) : null;
    }

    public PciBus Bus { get; }

    public int Slot { get; }

    public IPciDevice Device { get; }

    public int VectorCount { get; }

    public PciBar?[] Bars { get; }

    /// <summary>The bound driver's handle. Written under the bus's device lock; read lock-free by interrupt delivery.</summary>
    public PciDev? Binding
    {
        get => Volatile.Read(ref _binding);
        set => Volatile.Write(ref _binding, value);
    }

    public bool IsUnplugged
    {
        get => _unplugged;
        set => _unplugged = value;
    }

    public PciFunctionInfo Info => new(Slot, Device.VendorId, Device.DeviceId, Device.ClassCode, Binding?.Driver.Name);

    /// <summary>Queues an interrupt message for delivery. Never sleeps; safe from any thread.</summary>
    public void Raise(int vector)
    {
        if ((uint)vector >= (uint)VectorCount)
        {
            throw new ArgumentOutOfRangeException(nameof(vector), vector,
                $"Device in slot {Slot} ({Device.VendorId:x4}:{Device.DeviceId:x4}) raised vector {vector}, but it declares " +
                $"{VectorCount} vector(s). Raise only vectors below IPciDevice.VectorCount.");
        }
        Bus.Enqueue(this, vector);
    }

    public override string ToString() => Info.ToString();
}
