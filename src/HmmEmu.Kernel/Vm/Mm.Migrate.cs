using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Vm;

public sealed partial class Mm
{
    private static readonly TraceEventType s_migrateEvent = new("migrate", "setup", "start", "npages", "cpages");

    private SimWaitQueue? _migrationWait;

    private SimWaitQueue MigrationWait =>
        Volatile.Read(ref _migrationWait) ?? Interlocked.CompareExchange(ref _migrationWait, new SimWaitQueue(Kernel.Scheduler, $"mm{Id} migration entries"), null) ?? _migrationWait!;

    /// <summary>migration_entry_wait: waits until the entry at <paramref name="addr"/> is no longer <paramref name="entry"/>. May sleep.</summary>
    internal void WaitMigrationEntry(ulong addr, Pte entry)
    {
        Kernel.MightSleep("migration_entry_wait");
        MigrationWait.WaitUntil((this, addr, entry), static s => s.Item1.PageTable.Get(s.addr) != s.entry);
    }

    internal Errno MigrateSetup(MigrateVma args)
    {
        var vma = args.Vma!;
        MmapLock.AssertHeld("migrate_vma_setup");
        Kernel.MightSleep("migrate_vma_setup");
        ulong start = args.Start & PageMask, end = args.End & PageMask;
        if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap | VmFlags.MixedMap | VmFlags.HugeTlb)) != 0 || start >= end
            || start < vma.Start || end > vma.End || args.Src is null || args.Dst is null)
        {
            return Errno.EINVAL;
        }
        ulong npages = (end - start) >> PhysicalMemory.PageShift;
        if ((ulong)args.Src.Length < npages || (ulong)args.Dst.Length < npages)
            return Errno.EINVAL;
        var mem = Kernel.Memory;
        if (args.FaultPage is ulong fp && (DevicePagemap.Of(Kernel, fp) is not { Type: MemoryType.DevicePrivate } || !mem.HasFlags(fp, PageFlags.Locked)))
            return Errno.EINVAL;
        args.Start = start;
        args.End = end;
        Array.Clear(args.Src, 0, (int)npages);
        args.NPages = npages;
        args.CPages = 0;

        // A driver's migration notifies MMU_NOTIFY_MIGRATE with its owner (so it may skip its own callback); one the
        // kernel starts on a device's pages (a long-term pin) must reach that device's mirrors too.
        var range = args.KernelInitiated
            ? InvalidateRangeStart(NotifierEvent.Clear, start, end)
            : InvalidateRangeStart(NotifierEvent.Migrate, start, end, args.PgmapOwner);
        ulong cpages = 0;
        for (ulong addr = start; addr < end;)
        {
            var table = PageTable.Find(addr, out ulong next);
            ulong stop = Math.Min(end, next);
            if (table is null)
            {
                for (ulong a = addr; a < stop; a += PageSize)
                {
                    if (vma.IsAnonymous)
                    {
                        args.Src[(a - start) >> PhysicalMemory.PageShift] = MigratePfn.Migrate;
                        cpages++;
                    }
                }
            }
            else
            {
                // One page-table lock hold per table: collection never sleeps.
                using (PageTableLock.Scoped())
                {
                    for (ulong a = addr; a < stop; a += PageSize)
                    {
                        ulong s = CollectOne(args, vma, table, a);
                        args.Src[(a - start) >> PhysicalMemory.PageShift] = s;
                        if ((s & MigratePfn.Migrate) != 0)
                            cpages++;
                    }
                }
            }
            addr = stop;
        }
        InvalidateRangeEnd(range);
        args.CPages = cpages;
        Kernel.Trace.Record(s_migrateEvent, start, npages, cpages);
        return Errno.Ok;
    }

    // migrate_vma_collect_pmd for one entry, plus the unmap and pin checks. Caller holds the page-table lock.
    private ulong CollectOne(MigrateVma args, Vma vma, PteTable table, ulong addr)
    {
        var mem = Kernel.Memory;
        var pte = table.Get(CpuPageTable.PteIndex(addr));
        if (pte.IsNone)
            return vma.IsAnonymous ? MigratePfn.Migrate : 0;
        bool writable;
        ulong pfn = pte.Pfn;
        if (pte.IsPresent)
        {
            if (pte.IsZeroPage)
                return (args.Flags & MigrateSelect.System) != 0 ? MigratePfn.Migrate : 0;
            if (pte.IsSpecial || pte.IsProtNone)
                return 0;
            var pgmap = DevicePagemap.Of(Kernel, pfn);
            bool selectable = pgmap is null
                ? (args.Flags & MigrateSelect.System) != 0 && mem.HasFlags(pfn, PageFlags.Anon)
                : pgmap.Type == MemoryType.DeviceCoherent && (args.Flags & MigrateSelect.DeviceCoherent) != 0 && ReferenceEquals(pgmap.Owner, args.PgmapOwner);
            if (!selectable)
                return 0;
            writable = pte.IsWritable;
            if (pte.IsDirty)
                mem.SetFlags(pfn, PageFlags.Dirty);
        }
        else if (pte.IsDevicePrivate)
        {
            if ((args.Flags & MigrateSelect.DevicePrivate) == 0 || !ReferenceEquals(DevicePagemap.Of(Kernel, pfn)?.Owner, args.PgmapOwner))
                return 0;
            writable = pte.IsWritableEntry;
        }
        else
        {
            return 0;                                  // migration entries and anything else: not ours to take
        }
        // References beyond the mappings (and the fault path's) are pins (GUP): a pinned page must not move under
        // its holder. A page mapped by several processes (COW after fork, so read-only everywhere) is migrated for
        // this address space only; the others keep the old page until they touch or drop it. Linux instead unmaps
        // it everywhere through the reverse map; the data each process sees is the same either way.
        bool isFaultPage = args.FaultPage == pfn;
        if (mem.RefCount(pfn) > mem.MapCount(pfn) + (isFaultPage ? 1 : 0))
            return 0;
        if (!isFaultPage && !mem.TryLockPage(pfn))
            return 0;
        mem.GetPage(pfn);                               // the migration's reference
        SetPte(table, addr, Pte.MakeMigration(pfn, writable));
        mem.DecMapCount(pfn);
        mem.PutPage(pfn);                               // the mapping's reference
        return MigratePfn.From(pfn) | MigratePfn.Migrate | (writable ? MigratePfn.Write : 0);
    }

    internal void MigratePages(MigrateVma args)
    {
        MmapLock.AssertHeld("migrate_vma_pages");
        var mem = Kernel.Memory;
        var vma = args.Vma!;
        // Check every destination before changing anything, so a driver bug leaves no invalidation open.
        for (ulong i = 0; i < args.NPages; i++)
        {
            if ((args.Src![i] & MigratePfn.Migrate) != 0 && MigratePfn.ToPfn(args.Dst![i]) is ulong d && !mem.HasFlags(d, PageFlags.Locked))
            {
                throw new KernelRuleViolationException(
                    $"migrate_vma_pages: dst[{i}] (pfn 0x{d:x}) is not locked. Lock every destination page (LockPage, or " +
                    "DevicePagemap.InitPage for device pages) before handing it to the migration.");
            }
        }
        MmuNotifierRange? range = null;
        for (ulong i = 0; i < args.NPages; i++)
        {
            ulong src = args.Src![i], dst = args.Dst![i];
            if ((src & MigratePfn.Migrate) == 0)
                continue;
            if (MigratePfn.ToPfn(dst) is not ulong dpfn)
            {
                args.Src[i] = src & ~MigratePfn.Migrate;
                continue;
            }
            if ((src & MigratePfn.Valid) != 0)
                continue;                               // the driver copied; finalize maps it
            // No source page (none or zero page): insert the new page directly (migrate_vma_insert_page).
            ulong addr = args.Start + (i << PhysicalMemory.PageShift);
            range ??= InvalidateRangeStart(NotifierEvent.Migrate, args.Start, args.End, args.PgmapOwner);
            if (!vma.IsAnonymous || !InsertMigrated(vma, addr, dpfn))
                args.Src[i] = src & ~MigratePfn.Migrate;
        }
        if (range is { } r)
            InvalidateRangeEnd(r);
    }

    private bool InsertMigrated(Vma vma, ulong addr, ulong dpfn)
    {
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Ensure(addr);
            var cur = t.Get(CpuPageTable.PteIndex(addr));
            if (!cur.IsNone && !cur.IsZeroPage)
                return false;                           // the CPU raced us and mapped something
            MapMigrated(vma, t, addr, dpfn, (vma.Flags & VmFlags.Write) != 0);
            return true;
        }
    }

    // Maps a page that migration produced, taking the mapping's reference. Caller holds the page-table lock.
    private void MapMigrated(Vma vma, PteTable t, ulong addr, ulong pfn, bool writable)
    {
        var mem = Kernel.Memory;
        bool devicePrivate = DevicePagemap.Of(Kernel, pfn) is { Type: MemoryType.DevicePrivate };
        mem.GetPage(pfn);
        mem.IncMapCount(pfn);
        mem.SetOwner(pfn, this, addr >> PhysicalMemory.PageShift);
        mem.SetFlags(pfn, PageFlags.Anon | PageFlags.Uptodate);
        vma.HasAnonPages = true;
        writable &= (vma.Flags & VmFlags.Write) != 0;   // the VMA may have lost write access meanwhile (mprotect)
        var entry = devicePrivate ? Pte.MakeDevicePrivate(pfn, writable) : Pte.Make(pfn, writable);
        if (!devicePrivate && (vma.Flags & VmFlags.Read) == 0)
            entry = entry.MakeProtNone();
        SetPte(t, addr, entry);
    }

    internal void MigrateFinalize(MigrateVma args)
    {
        MmapLock.AssertHeld("migrate_vma_finalize");
        var mem = Kernel.Memory;
        var vma = args.Vma!;
        // One page-table lock hold for the whole range: nothing below sleeps (page frees call the driver's
        // PageFree, which must not sleep either).
        using (PageTableLock.Scoped())
        {
            PteTable? t = null;
            ulong tableEnd = 0;
            for (ulong i = 0; i < args.NPages; i++)
            {
                ulong src = args.Src![i], dst = args.Dst![i];
                ulong? dpfn = MigratePfn.ToPfn(dst);
                ulong addr = args.Start + (i << PhysicalMemory.PageShift);
                if (addr >= tableEnd)
                    t = PageTable.Find(addr, out tableEnd);
                if (MigratePfn.ToPfn(src) is ulong spfn)
                {
                    bool migrated = (src & MigratePfn.Migrate) != 0 && dpfn is not null;
                    ulong newPfn = migrated ? dpfn!.Value : spfn;
                    if (migrated && mem.HasFlags(spfn, PageFlags.Dirty))
                        mem.SetFlags(newPfn, PageFlags.Dirty);
                    var cur = t?.Get(CpuPageTable.PteIndex(addr)) ?? Pte.None;
                    if (cur.IsMigration && cur.Pfn == spfn)
                        MapMigrated(vma, t!, addr, newPfn, cur.IsWritableEntry);
                    if (args.FaultPage != spfn)
                        mem.UnlockPage(spfn);
                    mem.PutPage(spfn);                  // the migration's reference
                }
                if (dpfn is ulong d)
                {
                    mem.UnlockPage(d);
                    mem.PutPage(d);                     // the driver's reference
                }
            }
        }
        MigrationWait.WakeAll();
    }

    /// <summary>A CPU fault on a device-private entry: the page's owner migrates it back (do_swap_page → migrate_to_ram).</summary>
    private VmFaultResult DoDevicePrivateFault(Vma vma, ulong addr, Pte pte)
    {
        var mem = Kernel.Memory;
        ulong pfn = pte.Pfn;
        var pgmap = DevicePagemap.Of(Kernel, pfn) ?? throw new KernelBugException($"device-private entry {pte} at 0x{addr:x} names no device pagemap.");
        // Take the reference while the entry is known to be there (do_swap_page does it under the PTL).
        using (PageTableLock.Scoped())
        {
            if (PageTable.Get(addr) != pte)
                return VmFaultResult.Ok;
            mem.GetPage(pfn);
        }
        if (!mem.TryLockPage(pfn))
        {
            // Someone (a migration or an eviction) holds the page: back off and let the access retry, as
            // do_swap_page does. Sleeping on the lock here, with the mmap lock held, could deadlock against an
            // eviction that needs the mmap lock behind a queued writer.
            mem.PutPage(pfn);
            Kernel.Scheduler.Sleep(1_000);
            return VmFaultResult.Ok;
        }
        try
        {
            if (PageTable.Get(addr) != pte)
                return VmFaultResult.Ok;                // it changed meanwhile: retry the access
            return pgmap.Ops.MigrateToRam(new DeviceFault(vma, addr, pfn));
        }
        finally
        {
            mem.UnlockPage(pfn);
            mem.PutPage(pfn);
        }
    }
}
