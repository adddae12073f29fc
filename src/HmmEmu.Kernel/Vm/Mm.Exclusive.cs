using HmmEmu.Annotations;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Kernel.Vm;

public sealed partial class Mm
{
    /// <summary>
    /// make_device_exclusive: gives a device exclusive (atomic) access to the anonymous page at
    /// <paramref name="addr"/>. Faults the page in writable, then, inside an MMU_NOTIFY_EXCLUSIVE invalidation carrying
    /// <paramref name="owner"/>, replaces its entry by a device-exclusive entry; any later CPU access restores the
    /// mapping (after an MMU_NOTIFY_CLEAR) and so ends the device's exclusivity. Returns the page locked and referenced:
    /// map it on the device, then <c>UnlockPage</c> and <c>PutPage</c>. EFAULT if the address cannot be faulted in
    /// writable, EOPNOTSUPP for a page that is not private anonymous memory. Caller holds the mmap lock. May sleep.
    /// </summary>
    [MayInvalidate]
    public Errno MakeDeviceExclusive(ulong addr, object? owner, out ulong pfn)
    {
        MmapLock.AssertHeld("make_device_exclusive");
        Kernel.MightSleep("make_device_exclusive");
        addr &= PageMask;
        pfn = 0;
        var mem = Kernel.Memory;
        for (int attempt = 0; attempt < 16; attempt++)
        {
            var vma = VmaLookup(addr);
            if (vma is null || HandleMmFault(vma, addr, FaultFlags.Write | FaultFlags.Remote) != VmFaultResult.Ok)
                return Errno.EFAULT;
            var pte = PageTable.Get(addr);
            if (!pte.IsPresent || !pte.IsWritable)
                continue;                                   // raced with something: fault again
            if (pte.IsSpecial || !mem.HasFlags(pte.Pfn, PageFlags.Anon) || mem.IsDevicePage(pte.Pfn))
                return Errno.EOPNOTSUPP;
            ulong page = pte.Pfn;
            using (PageTableLock.Scoped())
            {
                if (PageTable.Get(addr) != pte)
                    continue;                           // changed since we looked: fault again
                mem.GetPage(page);
            }
            mem.LockPage(page);
            var range = InvalidateRangeStart(NotifierEvent.Exclusive, addr, addr + PageSize, owner);
            bool done = false;
            using (PageTableLock.Scoped())
            {
                var t = PageTable.Find(addr, out _);
                if (t is not null && t.Get(CpuPageTable.PteIndex(addr)) == pte)
                {
                    SetPte(t, addr, Pte.MakeDeviceExclusive(page, writable: true));
                    done = true;
                }
            }
            InvalidateRangeEnd(range);
            if (done)
            {
                pfn = page;
                return Errno.Ok;
            }
            mem.UnlockPage(page);
            mem.PutPage(page);
        }
        return Errno.EBUSY;
    }

    /// <summary>remove_device_exclusive_entry: a CPU access takes the page back from the device.</summary>
    private VmFaultResult RestoreExclusive(ulong addr, Pte pte)
    {
        var mem = Kernel.Memory;
        ulong pfn = pte.Pfn;
        using (PageTableLock.Scoped())
        {
            if (PageTable.Get(addr) != pte)
                return VmFaultResult.Ok;                // already restored or gone: retry the access
            mem.GetPage(pfn);
        }
        mem.LockPage(pfn);
        try
        {
            // KernelMutant.ExclusiveRestoreSkipsInvalidation (bug 14): restores without telling the notifiers.
            bool silent = (Kernel.Options.Mutants & KernelMutant.ExclusiveRestoreSkipsInvalidation) != 0;
            if (silent)
                StartMutantSilentRange(addr, addr + PageSize);
            var range = silent ? default : InvalidateRangeStart(NotifierEvent.Clear, addr, addr + PageSize);
            using (PageTableLock.Scoped())
            {
                var t = PageTable.Find(addr, out _);
                if (t is not null && t.Get(CpuPageTable.PteIndex(addr)) == pte)
                    SetPte(t, addr, Pte.Make(pfn, pte.IsWritableEntry));
            }
            if (silent)
                EndMutantSilentRange(addr, addr + PageSize);
            else
                InvalidateRangeEnd(range);
            return VmFaultResult.Ok;
        }
        finally
        {
            mem.UnlockPage(pfn);
            mem.PutPage(pfn);
        }
    }
}
