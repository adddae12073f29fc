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
    private readonly bool _watchFreeFrames;

    /// <summary>Creates a port onto <paramref name="memory"/>.</summary>
    /// <param name="memory">System RAM.</param>
    /// <param name="watchFreeFrames">
    /// Check every access against the frames' state: one that touches a free frame (a device still using a
    /// translation of a page the kernel has freed: INV-11, use after free) raises a kernel WARN naming the frame. The
    /// access still happens, as it would on a bus without an IOMMU. For device models whose DMA always goes to frames
    /// a driver mapped; off for raw tests of physical addresses.
    /// </param>
    public SystemMemoryPort(PhysicalMemory memory, bool watchFreeFrames = false)
    {
        ArgumentNullException.ThrowIfNull(memory);
        _memory = memory;
        _watchFreeFrames = watchFreeFrames;
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
        if (_watchFreeFrames)
        {
            ulong last = (address + (ulong)span.Length - 1) >> PhysicalMemory.PageShift;
            for (ulong p = pfn; p <= last; p++)
            {
                if (_memory.HasFlags(p, PageFlags.Free))
                    _memory.ReportAccessToFreeFrame(p, write);
            }
        }
        return true;
    }
}
