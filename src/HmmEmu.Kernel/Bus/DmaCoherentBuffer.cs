using HmmEmu.Kernel.Memory;

namespace HmmEmu.Kernel.Bus;

/// <summary>
/// Memory that both the CPU and a device can see (dma_alloc_coherent): physically contiguous, zero-filled pages
/// with a bus address for the device and a span for the CPU. Freed with <see cref="PciDev.FreeCoherent"/>, or by
/// the bus when the driver is removed.
/// </summary>
public sealed class DmaCoherentBuffer
{
    private readonly PhysicalMemory _memory;
    private int _freed;

    internal DmaCoherentBuffer(PhysicalMemory memory, PciDev owner, ulong firstPfn, int order, int length)
    {
        _memory = memory;
        Owner = owner;
        FirstPfn = firstPfn;
        Order = order;
        Length = length;
        _ = memory.ContiguousBytes(firstPfn, Pages);   // checks the block is one span for the CPU
    }

    /// <summary>The address the device uses (the physical address: there is no IOMMU).</summary>
    public ulong BusAddress => FirstPfn << PhysicalMemory.PageShift;

    /// <summary>Bytes requested.</summary>
    public int Length { get; }

    /// <summary>Whole pages backing the buffer (a power of two).</summary>
    public int Pages => 1 << Order;

    /// <summary>Whether the buffer has been freed; its span may no longer be used.</summary>
    public bool IsFreed => Volatile.Read(ref _freed) != 0;

    /// <summary>
    /// The CPU's view of the buffer, <see cref="Length"/> bytes. The device may write it at any time, as on real
    /// hardware: read device-written fields once, and order reads after the interrupt that announced them.
    /// </summary>
    public Span<byte> Span
    {
        get
        {
            if (IsFreed)
            {
                throw new KernelRuleViolationException(
                    $"The CPU touched coherent DMA buffer 0x{BusAddress:x} after it was freed (freed by FreeCoherent or " +
                    "by driver remove). Keep the buffer until the device is quiesced and stop using it after freeing.");
            }
            return _memory.ContiguousBytes(FirstPfn, Pages)[..Length];
        }
    }

    internal PciDev Owner { get; }

    internal ulong FirstPfn { get; }

    internal int Order { get; }

    /// <summary>Marks the buffer freed; returns false if it already was.</summary>
    internal bool MarkFreed() => Interlocked.Exchange(ref _freed, 1) == 0;

    /// <inheritdoc />
    public override string ToString() => $"coherent DMA 0x{BusAddress:x} +0x{Length:x}{(IsFreed ? " (freed)" : "")}";
}
