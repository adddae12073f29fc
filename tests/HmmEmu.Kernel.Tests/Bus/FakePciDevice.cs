using HmmEmu.Kernel.Bus;

namespace HmmEmu.Kernel.Tests.Bus;

/// <summary>A minimal device function for bus tests: one BAR of plain 32-bit words, a vector count, and a reset counter.</summary>
internal sealed class FakePciDevice : IPciDevice
{
    private readonly WordMmio _bar0;

    public FakePciDevice(ushort vendorId, ushort deviceId, int vectors = 4, uint classCode = 0x00ff00)
    {
        VendorId = vendorId;
        DeviceId = deviceId;
        VectorCount = vectors;
        ClassCode = classCode;
        _bar0 = new WordMmio(0x100);
        Bars = [_bar0, null];
    }

    public ushort VendorId { get; }

    public ushort DeviceId { get; }

    public uint ClassCode { get; }

    public IReadOnlyList<IMmio?> Bars { get; }

    public int VectorCount { get; }

    public IInterruptSink? Interrupts { get; private set; }

    public int Resets { get; private set; }

    public WordMmio Bar0 => _bar0;

    public void Attach(IInterruptSink interrupts) => Interrupts = interrupts;

    public void FunctionLevelReset()
    {
        Resets++;
        _bar0.Clear();
    }

    /// <summary>Raises <paramref name="vector"/> through the sink the bus attached.</summary>
    public void Raise(int vector) =>
        (Interrupts ?? throw new InvalidOperationException("The device was not plugged in.")).Raise(vector);

    /// <summary>A BAR of 32-bit words; anything else reads all-ones and drops the write.</summary>
    internal sealed class WordMmio(ulong size) : IMmio
    {
        private readonly uint[] _words = new uint[size / 4];

        public ulong Size => size;

        public ulong Read(ulong offset, int size) =>
            size == 4 && offset % 4 == 0 && offset < Size ? _words[offset / 4] : ~0UL;

        public void Write(ulong offset, int size, ulong value)
        {
            if (size == 4 && offset % 4 == 0 && offset < Size)
                _words[offset / 4] = (uint)value;
        }

        public void Clear() => Array.Clear(_words);
    }
}
