using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Vm;

public sealed partial class Mm
{
    private static readonly TraceEventType s_migrateEvent = new("migrate", "setup", "start", "npages", "cpages");
    private static readonly TraceSpanType s_migrateSpan = new("migrate", "migrate_vma", crossThread: false, "start", "npages", "select");

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

        // The span covers setup (and its invalidation) through finalize.
        args.TraceSpan = Kernel.Trace.Begin(s_migrateSpan, start, npages, (ulong)args.Flags);

        // A driver's migration notifies MMU_NOTIFY_MIGRATE with its owner (so it may skip its own callback); one the
        // kernel starts on a device's pages (a long-term pin) must reach that device's mirrors too.
        var range = args.KernelInitiated
            ? InvalidateRangeStart(NotifierEvent.Clear, start, end)
            : InvalidateRangeStart(NotifierEvent.Migrate, start, end, args.PgmapOwner);
        ulong cpages = 0;
        bool compound = (args.Flags & MigrateSelect.Compound) != 0;
        for (ulong addr = start; addr < end;)
        {
            var table = PageTable.Find(addr, out ulong next);
            if (compound && (addr & (CpuPageTable.TableSpan - 1)) == 0 && end - addr >= CpuPageTable.TableSpan
                && CollectCompound(args, vma, table, addr))
            {
                cpages++;
                addr += CpuPageTable.TableSpan;
                continue;
            }
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

    /// <summary>
    /// migrate_vma_collect_huge_pmd / collect_hole with MIGRATE_VMA_SELECT_COMPOUND: takes the whole 2 MiB block at
    /// <paramref name="block"/> as one compound entry when it is empty, all zero pages in a THP-enabled VMA (the huge zero
    /// page), or one selectable huge page (system THP, or a device THP of the owner) that is neither pinned nor locked.
    /// Returns false to let the caller collect the block page by page, splitting any huge page in it. May sleep (only
    /// to take the page-table lock).
    /// </summary>
    private bool CollectCompound(MigrateVma args, Vma vma, PteTable? table, ulong block)
    {
        ulong i0 = (block - args.Start) >> PhysicalMemory.PageShift;
        if (table is null || table.Used == 0)
        {
            if (!vma.IsAnonymous)
                return false;
            args.Src![i0] = MigratePfn.Migrate | MigratePfn.Compound;
            return true;
        }
        var mem = Kernel.Memory;
        using (PageTableLock.Scoped())
        {
            var first = table.Get(0);
            if (first.IsZeroPage)
            {
                bool thpVma = (vma.Flags & (VmFlags.HugePage | VmFlags.NoHugePage)) == VmFlags.HugePage;
                if (!thpVma || !vma.IsAnonymous || (args.Flags & MigrateSelect.System) == 0)
                    return false;
                for (int j = 1; j < PteTable.Count; j++)
                {
                    if (!table.Get(j).IsZeroPage)
                        return false;
                }
                args.Src![i0] = MigratePfn.Migrate | MigratePfn.Compound;
                return true;
            }
            if (!first.IsHuge || !IsSelectable(args, first))
                return false;
            ulong p0 = first.Pfn;
            bool writable = first.IsPresent ? first.IsWritable : first.IsWritableEntry;
            for (int j = 0; j < PteTable.Count; j++)
            {
                var e = table.Get(j);
                ulong p = p0 + (ulong)j;
                if (!e.IsHuge || e.Pfn != p || e.IsPresent != first.IsPresent || e.IsProtNone)
                    return false;
                if (mem.RefCount(p) > mem.MapCount(p) + (args.FaultPage == p ? 1 : 0))
                    return false;                       // a pinned subpage: split and migrate the rest
            }
            for (int j = 0; j < PteTable.Count; j++)
            {
                ulong p = p0 + (ulong)j;
                if (args.FaultPage != p && !mem.TryLockPage(p))
                {
                    while (j-- > 0)
                    {
                        if (args.FaultPage != p0 + (ulong)j)
                            mem.UnlockPage(p0 + (ulong)j);
                    }
                    return false;
                }
            }
            for (int j = 0; j < PteTable.Count; j++)
            {
                ulong p = p0 + (ulong)j;
                ulong a = block + ((ulong)j << PhysicalMemory.PageShift);
                if (table.Get(j).IsDirty)
                    mem.SetFlags(p, PageFlags.Dirty);
                mem.GetPage(p);                         // the migration's reference
                SetPte(table, a, Pte.MakeMigration(p, writable, huge: true));
                mem.DecMapCount(p);
                mem.PutPage(p);                         // the mapping's reference
            }
            args.Src![i0] = MigratePfn.From(p0) | MigratePfn.Migrate | MigratePfn.Compound | (writable ? MigratePfn.Write : 0);
            return true;
        }
    }

    // Whether a mapped page (present or device-private entry) is one this migration selects. Caller holds the page-table lock.
    private bool IsSelectable(MigrateVma args, Pte pte)
    {
        var mem = Kernel.Memory;
        if (pte.IsDevicePrivate)
            return (args.Flags & MigrateSelect.DevicePrivate) != 0 && ReferenceEquals(DevicePagemap.Of(Kernel, pte.Pfn)?.Owner, args.PgmapOwner);
        if (!pte.IsPresent || pte.IsSpecial || pte.IsProtNone)
            return false;
        var pgmap = DevicePagemap.Of(Kernel, pte.Pfn);
        return pgmap is null
            ? (args.Flags & MigrateSelect.System) != 0 && mem.HasFlags(pte.Pfn, PageFlags.Anon)
            : pgmap.Type == MemoryType.DeviceCoherent && (args.Flags & MigrateSelect.DeviceCoherent) != 0 && ReferenceEquals(pgmap.Owner, args.PgmapOwner);
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
            if (!IsSelectable(args, pte))
                return 0;
            writable = pte.IsWritable;
            if (pte.IsDirty)
                mem.SetFlags(pfn, PageFlags.Dirty);
        }
        else if (pte.IsDevicePrivate)
        {
            if (!IsSelectable(args, pte))
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
            ulong dst = args.Dst![i];
            if ((args.Src![i] & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(dst) is not ulong d)
                continue;
            if ((dst & MigratePfn.Compound) != 0 && ((args.Start + (i << PhysicalMemory.PageShift)) & (CpuPageTable.TableSpan - 1)) != 0)
            {
                throw new KernelRuleViolationException(
                    $"migrate_vma_pages: dst[{i}] is a compound page but the address it would map, 0x{args.Start + (i << PhysicalMemory.PageShift):x}, " +
                    "is not 2 MiB aligned. Give a compound destination only for a source entry that setup marked MIGRATE_PFN_COMPOUND.");
            }
            int frames = (dst & MigratePfn.Compound) != 0 ? MigratePfn.CompoundPages : 1;
            for (int j = 0; j < frames; j++)
            {
                if (!mem.HasFlags(d + (ulong)j, PageFlags.Locked))
                {
                    throw new KernelRuleViolationException(
                        $"migrate_vma_pages: dst[{i}] (pfn 0x{d:x}{(frames > 1 ? $", frame {j} of its 2 MiB page" : "")}) is not locked. Lock every " +
                        "destination page (LockPage, or DevicePagemap.InitPage for device pages) before handing it to the migration.");
                }
            }
        }
        MmuNotifierRange? range = null;
        for (ulong i = 0; i < args.NPages; i++)
        {
            ulong src = args.Src![i], dst = args.Dst![i];
            if ((src & MigratePfn.Migrate) == 0)
                continue;
            bool srcCompound = (src & MigratePfn.Compound) != 0, dstCompound = (dst & MigratePfn.Compound) != 0;
            ulong addr = args.Start + (i << PhysicalMemory.PageShift);
            if (srcCompound && !dstCompound)
            {
                // The driver could not get a 2 MiB page: split the source and go on page by page (the driver has
                // filled, or left empty, all 512 destination entries).
                src = SplitCompoundSource(args, i, addr);
            }
            else if (!srcCompound && dstCompound)
            {
                args.Src[i] = src & ~MigratePfn.Migrate;
                continue;
            }
            if (MigratePfn.ToPfn(dst) is not ulong dpfn)
            {
                args.Src[i] = src & ~MigratePfn.Migrate;
                continue;
            }
            ulong step = srcCompound && dstCompound ? (ulong)MigratePfn.CompoundPages - 1 : 0;
            if ((src & MigratePfn.Valid) != 0)
            {
                i += step;
                continue;                               // the driver copied; finalize maps it
            }
            // No source page (none or zero page): insert the new page directly (migrate_vma_insert_page).
            range ??= InvalidateRangeStart(NotifierEvent.Migrate, args.Start, args.End, args.PgmapOwner);
            bool inserted = vma.IsAnonymous && (step > 0 ? InsertMigratedHuge(vma, addr, dpfn) : InsertMigrated(vma, addr, dpfn));
            if (!inserted)
                args.Src[i] = src & ~MigratePfn.Migrate;
            i += step;
        }
        if (range is { } r)
            InvalidateRangeEnd(r);
    }

    // migrate_vma_split_unmapped_folio: entry i (compound) becomes 512 small entries; the source's migration entries
    // lose their huge marker. Returns the new src[i].
    private ulong SplitCompoundSource(MigrateVma args, ulong i, ulong addr)
    {
        ulong src = args.Src![i] & ~MigratePfn.Compound;
        args.Src[i] = src;
        ulong keep = src & (MigratePfn.Migrate | MigratePfn.Write);
        if (MigratePfn.ToPfn(src) is ulong s0)
        {
            using (PageTableLock.Scoped())
            {
                if (PageTable.Find(addr, out _) is { } t && t.Get(0).IsHuge)
                    SplitHuge(t);
            }
            for (ulong j = 1; j < MigratePfn.CompoundPages && i + j < args.NPages; j++)
                args.Src[i + j] = MigratePfn.From(s0 + j) | keep;
        }
        else
        {
            for (ulong j = 1; j < MigratePfn.CompoundPages && i + j < args.NPages; j++)
                args.Src[i + j] = keep;
        }
        return src;
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

    // migrate_vma_insert_huge_pmd_page: maps a 2 MiB destination over a block that is still empty or all zero pages.
    private bool InsertMigratedHuge(Vma vma, ulong block, ulong d0)
    {
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Ensure(block);
            for (int j = 0; j < PteTable.Count; j++)
            {
                var cur = t.Get(j);
                if (!cur.IsNone && !cur.IsZeroPage)
                    return false;                       // the CPU raced us and mapped something
            }
            bool writable = (vma.Flags & VmFlags.Write) != 0;
            for (int j = 0; j < PteTable.Count; j++)
                MapMigrated(vma, t, block + ((ulong)j << PhysicalMemory.PageShift), d0 + (ulong)j, writable, huge: true);
            return true;
        }
    }

    // Maps a page that migration produced, taking the mapping's reference. Caller holds the page-table lock.
    private void MapMigrated(Vma vma, PteTable t, ulong addr, ulong pfn, bool writable, bool huge = false)
    {
        var mem = Kernel.Memory;
        bool devicePrivate = DevicePagemap.Of(Kernel, pfn) is { Type: MemoryType.DevicePrivate };
        mem.GetPage(pfn);
        mem.IncMapCount(pfn);
        mem.SetOwner(pfn, this, addr >> PhysicalMemory.PageShift);
        mem.SetFlags(pfn, PageFlags.Anon | PageFlags.Uptodate);
        vma.HasAnonPages = true;
        writable &= (vma.Flags & VmFlags.Write) != 0;   // the VMA may have lost write access meanwhile (mprotect)
        var entry = devicePrivate ? Pte.MakeDevicePrivate(pfn, writable, huge) : Pte.Make(pfn, writable, huge: huge);
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
                ulong addr = args.Start + (i << PhysicalMemory.PageShift);
                if (addr >= tableEnd)
                    t = PageTable.Find(addr, out tableEnd);
                if ((src & MigratePfn.Compound) != 0)
                {
                    FinalizeCompound(args, vma, t, i, addr);
                    i += MigratePfn.CompoundPages - 1;
                    continue;
                }
                FinalizeOne(args, vma, t, addr, src, dst);
            }
        }
        MigrationWait.WakeAll();
        args.TraceSpan.End(args.CPages);
        args.TraceSpan = default;
    }

    // remove_migration_ptes for one small entry, then the pages' locks and references. Caller holds the page-table lock.
    private void FinalizeOne(MigrateVma args, Vma vma, PteTable? t, ulong addr, ulong src, ulong dst)
    {
        var mem = Kernel.Memory;
        ulong? dpfn = MigratePfn.ToPfn(dst);
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
            mem.PutPage(spfn);                          // the migration's reference
        }
        if (dpfn is ulong d)
            ReleaseDestination(d);
    }

    // A compound entry still compound at finalize: the whole block moved to a 2 MiB destination, or stays where it
    // was (the destination, small pages or none, is released). Caller holds the page-table lock.
    private void FinalizeCompound(MigrateVma args, Vma vma, PteTable? t, ulong i, ulong block)
    {
        var mem = Kernel.Memory;
        ulong src = args.Src![i], dst = args.Dst![i];
        ulong? d0 = (dst & MigratePfn.Compound) != 0 ? MigratePfn.ToPfn(dst) : null;
        if (MigratePfn.ToPfn(src) is ulong s0)
        {
            bool migrated = (src & MigratePfn.Migrate) != 0 && d0 is not null;
            bool whole = t is not null;
            for (int j = 0; j < PteTable.Count && whole; j++)
            {
                var cur = t!.Get(j);
                whole = cur.IsMigration && cur.IsHuge && cur.Pfn == s0 + (ulong)j;
            }
            for (ulong j = 0; j < MigratePfn.CompoundPages; j++)
            {
                ulong spfn = s0 + j, newPfn = migrated ? d0!.Value + j : spfn;
                ulong addr = block + (j << PhysicalMemory.PageShift);
                if (migrated && mem.HasFlags(spfn, PageFlags.Dirty))
                    mem.SetFlags(newPfn, PageFlags.Dirty);
                var cur = t?.Get(CpuPageTable.PteIndex(addr)) ?? Pte.None;
                if (cur.IsMigration && cur.Pfn == spfn)
                    MapMigrated(vma, t!, addr, newPfn, cur.IsWritableEntry, huge: whole);
                if (args.FaultPage != spfn)
                    mem.UnlockPage(spfn);
                mem.PutPage(spfn);                      // the migration's reference
            }
        }
        for (ulong j = 0; j < MigratePfn.CompoundPages && i + j < args.NPages; j++)
        {
            if (d0 is ulong d)
                ReleaseDestination(d + j);
            else if (MigratePfn.ToPfn(args.Dst![i + j]) is ulong small)
                ReleaseDestination(small);
        }
    }

    // Drops the driver's lock and reference on a destination page (mapped now, or freed).
    private void ReleaseDestination(ulong pfn)
    {
        Kernel.Memory.UnlockPage(pfn);
        Kernel.Memory.PutPage(pfn);                     // the driver's reference
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
            return pgmap.Ops.MigrateToRam(new DeviceFault(vma, addr, pfn, pte.IsHuge ? 9 : 0));
        }
        finally
        {
            mem.UnlockPage(pfn);
            mem.PutPage(pfn);
        }
    }
}
