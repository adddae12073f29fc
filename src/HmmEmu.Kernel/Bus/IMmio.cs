namespace HmmEmu.Kernel.Bus;

/// <summary>
/// A memory-mapped I/O window (one BAR) as the bus sees it. The device answers every access: a bad offset, size
/// or alignment reads as all-ones of the access size and drops the write, exactly as a PCI master abort does.
/// Implementations never throw on bad guest input.
/// </summary>
public interface IMmio
{
    /// <summary>Bytes the window spans; valid offsets are below this.</summary>
    ulong Size { get; }

    /// <summary>Reads <paramref name="size"/> bytes (4 or 8, naturally aligned) at <paramref name="offset"/>.</summary>
    ulong Read(ulong offset, int size);

    /// <summary>Writes the low <paramref name="size"/> bytes (4 or 8, naturally aligned) of <paramref name="value"/> at <paramref name="offset"/>.</summary>
    void Write(ulong offset, int size, ulong value);
}
