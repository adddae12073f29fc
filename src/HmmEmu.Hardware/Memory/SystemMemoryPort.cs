using HmmEmu.Kernel.Memory;

namespace HmmEmu.Hardware.Memory;

/// <summary>Host RAM as a device sees it over the bus: physical addresses of system-memory frames.</summary>
/// <remarks>
/// Only RAM frames are reachable (device-memory pfns are not system RAM), and the shared zero page may be
/// read but never written: a DMA write there would corrupt every zero-filled mapping in the machine.
/// </remarks>
public sealed class SystemMemoryPort : IMemoryPort
{
    private const ulong BlockPages = 512;

    private readonly PhysicalMemory _memory;

    /// <summary>Creates a port onto <paramref name="memory"/>.</summary>
    public SystemMemoryPort(PhysicalMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        _memory = memory;
    }

    /// <inheritdoc />
    public Aperture Aperture => Aperture.System;

    /// <inheritdoc />
    public ulong Size => _memory.TotalPages << PhysicalMemory.PageShift;

    /// <inheritdoc />
    public bool TryGetSpan(ulong address, int length, bool write, out Span<byte> span)
    {
        span = default;
        ulong pfn = address >> PhysicalMemory.PageShift;
        if (length <= 0 || !_memory.IsValidPfn(pfn) || (write && pfn == PhysicalMemory.ZeroPfn))
            return false;
        // One span to the end of the frame's 2 MiB backing block (or of RAM): a device without an IOMMU moves a
        // contiguous run at once. The zero page is frame 0, so a span starting past it never includes it.
        ulong blockEnd = Math.Min((pfn | (BlockPages - 1)) + 1, _memory.TotalPages);
        int offset = (int)(address & (PhysicalMemory.PageSize - 1));
        var run = _memory.ContiguousBytes(pfn, (int)(blockEnd - pfn));
        span = run.Slice(offset, (int)Math.Min((ulong)length, (ulong)(run.Length - offset)));
        return true;
    }
}
