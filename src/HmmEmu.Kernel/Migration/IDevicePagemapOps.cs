using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Migration;

/// <summary>A device driver's callbacks for its memory (struct dev_pagemap_ops).</summary>
public interface IDevicePagemapOps
{
    /// <summary>
    /// migrate_to_ram: a CPU touched <paramref name="fault"/>.Page; migrate it (at least it) back to system memory
    /// with <see cref="Migrate.VmaSetup"/> (flags SelectDevicePrivate, FaultPage set), copy, <see cref="Migrate.VmaPages"/>,
    /// <see cref="Migrate.VmaFinalize"/>. Return <see cref="VmFaultResult.SigBus"/> only if that is impossible. Called
    /// with the mmap lock held for reading. May sleep.
    /// </summary>
    VmFaultResult MigrateToRam(DeviceFault fault);

    /// <summary>page_free: the last reference to a device page went; return it to the driver's free pool. Must not sleep.</summary>
    void PageFree(ulong pfn);
}
