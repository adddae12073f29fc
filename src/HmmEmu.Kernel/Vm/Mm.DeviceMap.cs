using HmmEmu.Kernel.Memory;

namespace HmmEmu.Kernel.Vm;

public sealed partial class Mm
{
    /// <summary>
    /// mmap(2) of a device file: creates the area like <see cref="Mmap"/> (same argument checks and errors), then
    /// calls the driver's <paramref name="populate"/> (its f_op->mmap) with the mmap write lock held; if that fails,
    /// the area is removed again and its error returned. May sleep.
    /// </summary>
    public Errno MmapDevice(ulong length, Prot prot, MapFlags flags, Func<Vma, Errno> populate, out ulong mapped)
    {
        ArgumentNullException.ThrowIfNull(populate);
        mapped = 0;
        Kernel.MightSleep("mmap");
        if ((flags & MapFlags.Anonymous) != 0 || (flags & (MapFlags.Shared | MapFlags.Private)) == 0 || length == 0)
            return Errno.EINVAL;
        ulong len = PageAlign(length);
        if (len == 0 || len > TaskSize)
            return Errno.ENOMEM;
        var vmFlags = ProtToVmFlags(prot) | VmFlags.MayRead | VmFlags.MayWrite | VmFlags.MayExec;
        if ((flags & MapFlags.Shared) != 0)
            vmFlags |= VmFlags.Shared | VmFlags.MayShare;
        using (MmapWriteLock())
        {
            if (HasExited || !TryGetUnmappedArea(0, len, out ulong addr))
                return Errno.ENOMEM;
            var vma = new Vma(this, addr, addr + len, vmFlags, null, 0) { IsDeviceMapping = true };
            InsertVma(vma);
            var err = populate(vma);
            if (err != Errno.Ok)
            {
                UnmapLocked(addr, addr + len);
                return err;
            }
            mapped = addr;
            return Errno.Ok;
        }
    }

    /// <summary>
    /// vm_insert_page: maps <paramref name="pfn"/> (a page the driver allocated) at <paramref name="addr"/> of a
    /// device mapping and marks it VM_MIXEDMAP. The mapping takes its own reference. The entry follows the VMA's
    /// protection: read-only in a private mapping (copy-on-write). EINVAL outside the area, EBUSY if something is
    /// already mapped there. Caller holds the mmap lock.
    /// </summary>
    public Errno InsertPage(Vma vma, ulong addr, ulong pfn)
    {
        ArgumentNullException.ThrowIfNull(vma);
        MmapLock.AssertHeld("vm_insert_page");
        if (!ReferenceEquals(vma.Mm, this) || !vma.Contains(addr) || (addr & ~PageMask) != 0 || !vma.IsDeviceMapping)
            return Errno.EINVAL;
        var mem = Kernel.Memory;
        vma.Flags |= VmFlags.MixedMap;
        bool writable = vma.IsShared && (vma.Flags & VmFlags.Write) != 0;
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Ensure(addr);
            if (!t.Get(CpuPageTable.PteIndex(addr)).IsNone)
                return Errno.EBUSY;
            mem.GetPage(pfn);
            mem.IncMapCount(pfn);
            SetPte(t, addr, Pte.Make(pfn, writable));
        }
        return Errno.Ok;
    }
}
