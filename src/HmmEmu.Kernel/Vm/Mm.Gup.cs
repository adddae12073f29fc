using HmmEmu.Annotations;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;

namespace HmmEmu.Kernel.Vm;

public sealed partial class Mm
{
    /// <summary>
    /// get_user_pages / pin_user_pages: faults in <paramref name="pages"/>.Length pages from <paramref name="start"/>
    /// (writable with <see cref="GupFlags.Write"/>) and takes a reference on each, which the caller drops with
    /// <c>PutPage</c>. A device-private page is faulted back to RAM. A device-coherent page is returned as is,
    /// unless the pin is <see cref="GupFlags.LongTerm"/>, in which case it is first migrated to system memory
    /// (device memory must stay evictable). Returns EFAULT if an address cannot be faulted in (pages before it
    /// stay referenced and are counted in <paramref name="pinned"/>). Takes the mmap lock for reading. May sleep.
    /// </summary>
    [MayInvalidate]
    public Errno GetUserPages(ulong start, GupFlags flags, Span<ulong> pages, out int pinned)
    {
        Kernel.MightSleep("get_user_pages");
        pinned = 0;
        if ((start & ~PageMask) != 0)
            return Errno.EINVAL;
        var mem = Kernel.Memory;
        bool write = (flags & GupFlags.Write) != 0;
        using (MmapReadLock())
        {
            for (int i = 0; i < pages.Length; i++)
            {
                ulong addr = start + ((ulong)i << PhysicalMemory.PageShift);
                var vma = VmaLookup(addr);
                if (vma is null)
                    return Errno.EFAULT;
                for (int attempt = 0; ; attempt++)
                {
                    if (attempt > 16)
                        return Errno.EBUSY;
                    if (TryGrabPage(addr, write, out ulong pfn))
                    {
                        if ((flags & GupFlags.LongTerm) != 0 && DevicePagemap.Of(Kernel, pfn) is { } pgmap)
                        {
                            mem.PutPage(pfn);
                            if (MigrateOutForLongTermPin(vma, addr, pgmap) != Errno.Ok)
                                return Errno.ENOMEM;
                            continue;
                        }
                        pages[i] = pfn;
                        pinned++;
                        break;
                    }
                    var r = HandleMmFault(vma, addr, FaultFlags.Remote | (write ? FaultFlags.Write : FaultFlags.None));
                    if (r != VmFaultResult.Ok)
                        return r == VmFaultResult.Oom ? Errno.ENOMEM : Errno.EFAULT;
                }
            }
        }
        return Errno.Ok;
    }

    // follow_page: a present entry with the access needed yields its page, referenced.
    private bool TryGrabPage(ulong addr, bool write, out ulong pfn)
    {
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Find(addr, out _);
            var pte = t?.Get(CpuPageTable.PteIndex(addr)) ?? Pte.None;
            pfn = pte.Pfn;
            if (!pte.IsReadable || (write && !pte.IsWritable))
                return false;
            Kernel.Memory.GetPage(pfn);
            return true;
        }
    }

    // migrate_longterm_unpinnable_pages for one page: copy a device-coherent page out to system memory.
    private Errno MigrateOutForLongTermPin(Vma vma, ulong addr, DevicePagemap pgmap)
    {
        var mem = Kernel.Memory;
        var args = new MigrateVma
        {
            Vma = vma, Start = addr, End = addr + PageSize, Src = new ulong[1], Dst = new ulong[1],
            PgmapOwner = pgmap.Owner, Flags = MigrateSelect.DeviceCoherent, KernelInitiated = true,
        };
        var err = MigrateSetup(args);
        if (err != Errno.Ok)
            return err;
        if ((args.Src[0] & MigratePfn.Migrate) != 0 && MigratePfn.ToPfn(args.Src[0]) is ulong src)
        {
            if (mem.AllocPage(Gfp.HighUser, out ulong dst) == Errno.Ok)
            {
                mem.LockPage(dst);
                mem.CopyPage(dst, src);
                args.Dst[0] = MigratePfn.From(dst) | (args.Src[0] & MigratePfn.Write);
            }
        }
        MigratePages(args);
        MigrateFinalize(args);
        return MigratePfn.ToPfn(args.Dst[0]) is null ? Errno.ENOMEM : Errno.Ok;
    }
}
