namespace HmmEmu.Kernel.Memory;

/// <summary>What physical memory needs to know about a registered device-memory range.</summary>
internal interface IDevicePageRegion
{
    /// <summary>The first pfn of the range.</summary>
    ulong FirstPfn { get; }

    /// <summary>How many pages.</summary>
    int PageCount { get; }

    /// <summary>Whether the CPU can load and store to these pages (device-coherent) or not (device-private).</summary>
    bool CpuAccessible { get; }

    /// <summary>The last reference to a page went: give it back to its driver (page_free).</summary>
    void PageFree(ulong pfn);
}
