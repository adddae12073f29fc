using HmmEmu.Kernel.Memory;

namespace HmmEmu.Kernel.Migration;

/// <summary>
/// A registered range of device memory (struct dev_pagemap after memremap_pages): pfns with ordinary page metadata,
/// the owner token that identifies the device to HMM and migration, and the driver's callbacks.
/// </summary>
public sealed class DevicePagemap : IDevicePageRegion
{
    private readonly HostKernel _kernel;
    private readonly object?[] _zoneDeviceData;

    private DevicePagemap(HostKernel kernel, MemoryType type, int pages, object owner, IDevicePagemapOps ops)
    {
        _kernel = kernel;
        Type = type;
        Owner = owner;
        Ops = ops;
        PageCount = pages;
        _zoneDeviceData = new object?[pages];
        FirstPfn = kernel.Memory.ReserveDeviceRange(pages, this);
    }

    /// <summary>
    /// memremap_pages: registers <paramref name="pages"/> pages of device memory of <paramref name="type"/>, owned by
    /// <paramref name="owner"/> (the pgmap owner HMM and migration compare against). Throws if the kernel has no
    /// device pfns left (see <see cref="KernelOptions.DevicePages"/>).
    /// </summary>
    public static DevicePagemap Register(HostKernel kernel, MemoryType type, int pages, object owner, IDevicePagemapOps ops)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(ops);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pages);
        if (!Enum.IsDefined(type))
            throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown device memory type.");
        return new DevicePagemap(kernel, type, pages, owner, ops);
    }

    /// <summary>The pagemap holding <paramref name="pfn"/>, or null for RAM (page_pgmap).</summary>
    public static DevicePagemap? Of(HostKernel kernel, ulong pfn)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return kernel.Memory.RegionOf(pfn) as DevicePagemap;
    }

    /// <summary>Private or coherent.</summary>
    public MemoryType Type { get; }

    /// <summary>The pgmap owner.</summary>
    public object Owner { get; }

    /// <summary>The driver's callbacks.</summary>
    public IDevicePagemapOps Ops { get; }

    /// <summary>The first pfn.</summary>
    public ulong FirstPfn { get; }

    /// <summary>How many pages.</summary>
    public int PageCount { get; }

    /// <summary>Whether the CPU can access the pages directly.</summary>
    public bool CpuAccessible => Type == MemoryType.DeviceCoherent;

    /// <summary>Whether <paramref name="pfn"/> belongs to this pagemap.</summary>
    public bool Contains(ulong pfn) => pfn >= FirstPfn && pfn < FirstPfn + (ulong)PageCount;

    /// <summary>zone_device_page_init: hands the free page <paramref name="pfn"/> to the driver with one reference, locked.</summary>
    public void InitPage(ulong pfn)
    {
        CheckOwn(pfn);
        _kernel.Memory.InitDevicePage(pfn);
    }

    /// <summary>zone_device_data: the driver's per-page pointer.</summary>
    public object? GetZoneDeviceData(ulong pfn) => Volatile.Read(ref _zoneDeviceData[CheckOwn(pfn)]);

    /// <summary>Sets zone_device_data.</summary>
    public void SetZoneDeviceData(ulong pfn, object? data) => Volatile.Write(ref _zoneDeviceData[CheckOwn(pfn)], data);

    void IDevicePageRegion.PageFree(ulong pfn) => Ops.PageFree(pfn);

    private int CheckOwn(ulong pfn) =>
        Contains(pfn) ? (int)(pfn - FirstPfn) : throw new ArgumentOutOfRangeException(nameof(pfn), $"pfn 0x{pfn:x} is not in {this}.");

    /// <inheritdoc />
    public override string ToString() => $"{Type} pagemap of {Owner} [0x{FirstPfn:x}, +{PageCount})";
}
