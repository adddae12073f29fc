using HmmEmu.Kernel.Memory;

namespace HmmEmu.Hardware.Memory;

/// <summary>Host RAM as a device sees it over the bus: physical addresses of system-memory frames.</summary>
/// <remarks>
/// Only RAM frames are reachable (device-memory pfns are not system RAM), and the shared zero page may be
/// read but never written: a DMA write there would corrupt every zero-filled mapping in the machine.
/// </remarks>
public sealed class SystemMemoryPort : IMemoryPort
{
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
        int offset = (int)(address & (PhysicalMemory.PageSize - 1));
        span = _memory.PageBytes(pfn).Slice(offset, Math.Min(length, PhysicalMemory.PageSize - offset));
        return true;
    }
}
