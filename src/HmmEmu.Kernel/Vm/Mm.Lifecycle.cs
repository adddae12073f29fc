using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Kernel.Vm;

public sealed partial class Mm
{
    /// <summary>
    /// dup_mmap: builds the child's address space for fork. Private writable mappings become copy-on-write: the
    /// parent's writable entries are write-protected inside an MMU_NOTIFY_PROTECTION_PAGE invalidation of the whole
    /// VMA, and parent and child share the pages read-only. Shared mappings share pages writable. VMAs that never
    /// had anonymous pages are not copied entry by entry (the child faults them). May sleep.
    /// </summary>
    internal Mm Dup()
    {
        Kernel.MightSleep("fork");
        var child = new Mm(Kernel);
        var mem = Kernel.Memory;
        using (MmapWriteLock())
        {
            if (HasExited)
                throw new InvalidOperationException($"fork of a process whose address space (mm {Id}) has exited.");
            foreach (var vma in _vmas)
            {
                if ((vma.Flags & VmFlags.DontCopy) != 0)
                    continue;
                var cv = vma.CloneInto(child);
                child.InsertVma(cv);
                if (!vma.HasAnonPages && (vma.Flags & (VmFlags.PfnMap | VmFlags.MixedMap)) == 0)
                    continue;
                WaitOutMigrationEntries(vma.Start, vma.End);
                bool cow = vma.IsCow;
                // KernelMutant.ForkSkipsInvalidation (bug 9): write-protects for COW without telling the notifiers.
                bool silent = cow && (Kernel.Options.Mutants & KernelMutant.ForkSkipsInvalidation) != 0;
                if (silent)
                    StartMutantSilentRange(vma.Start, vma.End);
                var range = cow && !silent ? InvalidateRangeStart(NotifierEvent.ProtectionPage, vma.Start, vma.End) : default;
                ulong addr = vma.Start;
                while (addr < vma.End)
                {
                    var table = PageTable.Find(addr, out ulong next);
                    ulong stop = Math.Min(vma.End, next);
                    if (table is not null && table.Used > 0)
                    {
                        using (PageTableLock.Scoped())
                        {
                            PteTable? childTable = null;
                            for (ulong a = addr; a < stop; a += PageSize)
                            {
                                var pte = table.Get(CpuPageTable.PteIndex(a));
                                if (pte.IsNone)
                                    continue;
                                if (pte.IsDeviceExclusive)
                                {
                                    // try_restore_exclusive_pte: the parent gets its page back before it is shared,
                                    // with the VMA's protection (vm_page_prot): an mprotect since may have made it
                                    // read-only or PROT_NONE, which the exclusive entry does not record.
                                    bool readable = (vma.Flags & VmFlags.Read) != 0;
                                    bool writable = pte.IsWritableEntry && (vma.Flags & VmFlags.Write) != 0;
                                    pte = Pte.Make(pte.Pfn, writable).WithAccess(readable, writable);
                                    SetPte(table, a, pte);
                                }
                                if (!pte.IsSpecial)
                                {
                                    mem.GetPage(pte.Pfn);
                                    mem.IncMapCount(pte.Pfn);
                                }
                                if (cow && pte.IsWritable)
                                {
                                    pte = pte.WriteProtect();
                                    SetPte(table, a, pte);
                                }
                                else if (cow && pte.IsDevicePrivate && pte.IsWritableEntry)
                                {
                                    // copy_nonpresent_pte: a writable device-private entry becomes read-only in both.
                                    pte = Pte.MakeDevicePrivate(pte.Pfn, writable: false);
                                    SetPte(table, a, pte);
                                }
                                childTable ??= child.PageTable.Ensure(a);
                                child.SetPte(childTable, a, pte);
                            }
                        }
                    }
                    addr = stop;
                }
                if (silent)
                    EndMutantSilentRange(vma.Start, vma.End);
                else if (cow)
                    InvalidateRangeEnd(range);
            }
        }
        return child;
    }

    /// <summary>
    /// exit_mmap: MMU_NOTIFY_RELEASE to every notifier, then one MMU_NOTIFY_UNMAP of the whole address space while
    /// every mapping is torn down. Runs when the last user reference is put. May sleep.
    /// </summary>
    private void ExitMmap()
    {
        Subscriptions.Release();
        using (MmapWriteLock())
        {
            Volatile.Write(ref _exited, 1);
            if (_vmas.Count > 0)
            {
                var range = InvalidateRangeStart(NotifierEvent.Unmap, 0, ulong.MaxValue);
                foreach (var v in _vmas)
                    Zap(v, v.Start, v.End);
                InvalidateRangeEnd(range);
            }
            var all = _vmas.ToArray();
            foreach (var v in all)
                RemoveVma(v);
            foreach (var v in all)
                v.File?.ReleaseIfUnmapped();
            using (PageTableLock.Scoped())
                PageTable.FreeEmptyTables(0, TaskSize);
        }
    }

    /// <summary>
    /// The OOM reaper's pass over this address space (__oom_reap_task_mm): for each private or anonymous VMA, a
    /// non-blockable MMU_NOTIFY_UNMAP invalidation, and if every callback accepts it, the VMA's pages are freed.
    /// A VMA whose callbacks refuse is left exactly as it was and the result is EAGAIN (the reaper retries later).
    /// Also EAGAIN if the mmap lock is contended. Never sleeps.
    /// </summary>
    public Errno OomReap()
    {
        if (!MmapLock.TryDownRead())
            return Errno.EAGAIN;
        try
        {
            if (HasExited)
                return Errno.Ok;
            var result = Errno.Ok;
            foreach (var vma in _vmas)
            {
                if ((vma.Flags & VmFlags.PfnMap) != 0 || vma.IsShared)
                    continue;
                if (InvalidateRangeStartNonBlock(NotifierEvent.Unmap, vma.Start, vma.End, out var range) != Errno.Ok)
                {
                    if ((Kernel.Options.Mutants & KernelMutant.OomReapIgnoresRefusal) != 0)
                    {
                        // KernelMutant.OomReapIgnoresRefusal (bug 12): zaps although a callback refused. The refused
                        // start already ended itself, so start and end stay paired; the refusal is not reported.
                        StartMutantSilentRange(vma.Start, vma.End);
                        Zap(vma, vma.Start, vma.End);
                        EndMutantSilentRange(vma.Start, vma.End);
                        continue;
                    }
                    result = Errno.EAGAIN;
                    continue;
                }
                Zap(vma, vma.Start, vma.End);
                InvalidateRangeEnd(range);
            }
            return result;
        }
        finally
        {
            MmapLock.UpRead();
        }
    }

    /// <summary>
    /// Waits until no migration entry is left in [start, end). Caller holds the mmap write lock, so no new migration
    /// can start here; one already running (an eviction needs no mmap lock to finish) ends on its own. Used by fork
    /// and mremap, which would otherwise copy or move an entry that the migration then cannot find.
    /// </summary>
    private void WaitOutMigrationEntries(ulong start, ulong end)
    {
        MmapLock.AssertWriteHeld("WaitOutMigrationEntries");
        for (ulong addr = start; addr < end;)
        {
            var table = PageTable.Find(addr, out ulong next);
            ulong stop = Math.Min(end, next);
            if (table is not null)
            {
                for (ulong a = addr; a < stop; a += PageSize)
                {
                    var pte = table.Get(CpuPageTable.PteIndex(a));
                    if (pte.IsMigration)
                        WaitMigrationEntry(a, pte);
                }
            }
            addr = stop;
        }
    }

    /// <summary>Counts the pages of [start, end) that are present, for tests and statistics. Lockless snapshot.</summary>
    public int CountPresent(ulong start, ulong end)
    {
        int n = 0;
        for (ulong a = start & PageMask; a < end; a += PageSize)
        {
            if (PageTable.Get(a).IsPresent)
                n++;
        }
        return n;
    }

    /// <summary>Reads a page's frame bytes for the entry at <paramref name="addr"/> (for tests); empty if not present.</summary>
    internal ReadOnlySpan<byte> PeekPage(ulong addr)
    {
        var pte = PageTable.Get(addr & PageMask);
        return pte.IsPresent ? Kernel.Memory.PageBytes(pte.Pfn) : default;
    }

    /// <summary>try_to_unmap_one: unmaps <paramref name="pfn"/> at <paramref name="addr"/> after MMU_NOTIFY_CLEAR. Caller holds the page lock and the file's i_mmap rwsem.</summary>
    internal void UnmapPageForReclaim(Vma vma, ulong addr, ulong pfn)
    {
        if (HasExited || PageTable.Get(addr) is not { IsPresent: true } pte || pte.Pfn != pfn)
            return;
        var range = InvalidateRangeStart(NotifierEvent.Clear, addr, addr + PageSize);
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Find(addr, out _);
            var cur = t?.Get(CpuPageTable.PteIndex(addr)) ?? Pte.None;
            if (t is not null && cur.IsPresent && cur.Pfn == pfn)
            {
                SetPte(t, addr, Pte.None);
                ReleaseMapping(vma, cur);
            }
        }
        InvalidateRangeEnd(range);
    }
}
