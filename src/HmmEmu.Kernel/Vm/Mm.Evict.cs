using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Kernel.Vm;

public sealed partial class Mm
{
    /// <summary>
    /// try_to_migrate for device eviction: replaces every entry of this address space that maps one of
    /// the selected pages in <paramref name="src"/> by a migration entry (after MMU_NOTIFY_CLEAR of the page) and reports each place.
    /// Takes the mmap lock for reading. May sleep.
    /// </summary>
    internal void UnmapForDeviceEviction(ulong firstPfn, ulong[] src, List<(Vma Vma, ulong Addr, ulong Pfn)> places)
    {
        var mem = Kernel.Memory;
        int npages = src.Length;
        using (MmapReadLock())
        {
            if (HasExited)
                return;
            foreach (var vma in _vmas)
            {
                if (!vma.HasAnonPages)
                    continue;
                for (ulong addr = vma.Start; addr < vma.End;)
                {
                    var table = PageTable.Find(addr, out ulong next);
                    ulong stop = Math.Min(vma.End, next);
                    if (table is not null && table.Used > 0)
                    {
                        for (ulong a = addr; a < stop; a += PageSize)
                        {
                            var pte = table.Get(CpuPageTable.PteIndex(a));
                            bool device = pte.IsDevicePrivate || (pte.IsPresent && mem.IsDevicePage(pte.Pfn));
                            if (!device || pte.Pfn < firstPfn || pte.Pfn - firstPfn >= (ulong)npages)
                                continue;
                            ulong i = pte.Pfn - firstPfn;
                            if ((src[i] & MigratePfn.Migrate) == 0)
                                continue;
                            var range = InvalidateRangeStart(NotifierEvent.Clear, a, a + PageSize);
                            using (PageTableLock.Scoped())
                            {
                                var cur = table.Get(CpuPageTable.PteIndex(a));
                                if (cur == pte)
                                {
                                    bool writable = pte.IsDevicePrivate ? pte.IsWritableEntry : pte.IsWritable;
                                    SetPte(table, a, Pte.MakeMigration(pte.Pfn, writable));
                                    mem.DecMapCount(pte.Pfn);
                                    mem.PutPage(pte.Pfn);
                                    if (writable)
                                        src[i] |= MigratePfn.Write;
                                    places.Add((vma, a, pte.Pfn));
                                }
                            }
                            InvalidateRangeEnd(range);
                        }
                    }
                    addr = stop;
                }
            }
        }
    }

    /// <summary>
    /// remove_migration_pte for eviction: maps <paramref name="newPfn"/> where the migration entry for
    /// <paramref name="oldPfn"/> still stands. Takes no mmap lock (as the kernel's reverse-map walk takes none):
    /// a thread faulting on the entry waits for it while holding the mmap lock for reading, and a writer queued
    /// behind that reader would otherwise block this restore forever. If the range was unmapped meanwhile, the
    /// migration entry is gone and nothing is mapped.
    /// </summary>
    internal void RestoreAfterDeviceEviction(Vma vma, ulong addr, ulong oldPfn, ulong newPfn)
    {
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Find(addr, out _);
            var cur = t?.Get(CpuPageTable.PteIndex(addr)) ?? Pte.None;
            if (cur.IsMigration && cur.Pfn == oldPfn)
                MapMigrated(vma, t!, addr, newPfn, cur.IsWritableEntry);
        }
        MigrationWait.WakeAll();
    }
}
