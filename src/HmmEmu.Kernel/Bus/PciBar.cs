namespace HmmEmu.Kernel.Bus;

/// <summary>
/// A driver's view of one BAR (the <c>void __iomem *</c> from pci_iomap): 32- and 64-bit MMIO reads and writes,
/// forwarded to the device unchecked. The device answers bad accesses (all-ones reads, dropped writes).
/// </summary>
public sealed class PciBar
{
    private readonly IMmio _mmio;

    internal PciBar(int index, IMmio mmio)
    {
        Index = index;
        _mmio = mmio;
    }

    /// <summary>Which BAR of the function this is.</summary>
    public int Index { get; }

    /// <summary>Bytes the BAR spans.</summary>
    public ulong Length => _mmio.Size;

    /// <summary>readl: a 32-bit MMIO read. Never sleeps.</summary>
    public uint Read32(ulong offset) => (uint)_mmio.Read(offset, 4);

    /// <summary>writel: a 32-bit MMIO write. Never sleeps.</summary>
    public void Write32(ulong offset, uint value) => _mmio.Write(offset, 4, value);

    /// <summary>readq: a 64-bit MMIO read. Never sleeps.</summary>
    public ulong Read64(ulong offset) => _mmio.Read(offset, 8);

    /// <summary>writeq: a 64-bit MMIO write. Never sleeps.</summary>
    public void Write64(ulong offset, ulong value) => _mmio.Write(offset, 8, value);

    /// <inheritdoc />
    public override string ToString() => $"BAR{Index} ({Length} bytes)";
}
