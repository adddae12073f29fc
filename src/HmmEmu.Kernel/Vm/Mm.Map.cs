using HmmEmu.Annotations;
using HmmEmu.Kernel.Fs;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Kernel.Vm;

public sealed partial class Mm
{
    /// <summary>
    /// mmap(2): maps <paramref name="length"/> bytes (rounded up to pages) with <paramref name="prot"/>, anonymous or
    /// from <paramref name="file"/> at <paramref name="offset"/>. Returns the kernel's errno for bad arguments
    /// (EINVAL: zero length, unaligned offset or fixed address, neither or both of Shared/Private; EBADF: no file for
    /// a file mapping; ENOMEM: no room; EEXIST: FixedNoReplace over a mapping; EOVERFLOW: file offset wraps), in
    /// which case nothing changes. Takes the mmap lock for writing. May sleep.
    /// </summary>
    [MayInvalidate]
    public Errno Mmap(ulong addr, ulong length, Prot prot, MapFlags flags, out ulong mapped, SimFile? file = null, ulong offset = 0)
    {
        mapped = 0;
        Kernel.MightSleep("mmap");
        if ((offset & ~PageMask) != 0)
            return Errno.EINVAL;
        var type = flags & (MapFlags.Shared | MapFlags.Private);
        if (type == (MapFlags.Shared | MapFlags.Private))
            type = MapFlags.Shared;                 // MAP_SHARED_VALIDATE (0x03): shared, with flags checked
        if (type == MapFlags.None)
            return Errno.EINVAL;
        bool anonymous = (flags & MapFlags.Anonymous) != 0;
        if (!anonymous && file is null)
            return Errno.EBADF;
        if (((int)prot & ~(int)(Prot.Read | Prot.Write | Prot.Exec)) != 0)
            return Errno.EINVAL;
        if (length == 0)
            return Errno.EINVAL;
        bool hugetlb = (flags & MapFlags.HugeTlb) != 0;
        if (hugetlb && !anonymous)
            return Errno.EINVAL;                        // hugetlbfs files are not modelled
        ulong len = hugetlb ? (length + CpuPageTable.TableSpan - 1) & ~(CpuPageTable.TableSpan - 1) : PageAlign(length);
        if (len == 0 || len > TaskSize)
            return Errno.ENOMEM;
        ulong pgoff = anonymous ? 0 : offset >> PhysicalMemory.PageShift;
        if (pgoff + (len >> PhysicalMemory.PageShift) < pgoff)
            return Errno.EOVERFLOW;
        bool fixedAddr = (flags & (MapFlags.Fixed | MapFlags.FixedNoReplace)) != 0;
        if (fixedAddr && (addr & (hugetlb ? CpuPageTable.TableSpan - 1 : ~PageMask)) != 0)
            return Errno.EINVAL;
        if (fixedAddr && (addr > TaskSize - len))
            return Errno.ENOMEM;

        var vmFlags = ProtToVmFlags(prot) | VmFlags.MayRead | VmFlags.MayWrite | VmFlags.MayExec;
        if (type == MapFlags.Shared)
            vmFlags |= VmFlags.Shared | VmFlags.MayShare;
        if (hugetlb)
        {
            if (type == MapFlags.Shared)
                return Errno.EINVAL;                    // shared hugetlb (a hugetlbfs object) is not modelled
            vmFlags |= VmFlags.HugeTlb;
        }
        using (MmapWriteLock())
        {
            if (HasExited)
                return Errno.ENOMEM;
            if (fixedAddr)
            {
                bool overlaps = FindIndex(addr) is int i && i < _vmas.Count && _vmas[i].Start < addr + len;
                if (overlaps && (flags & MapFlags.FixedNoReplace) != 0)
                    return Errno.EEXIST;
                if (overlaps)
                    UnmapLocked(addr, addr + len);
            }
            else if (!TryGetUnmappedArea(addr, len, out addr, hugetlb ? CpuPageTable.TableSpan : PageSize))
            {
                return Errno.ENOMEM;
            }
            var backing = file;
            if (anonymous && type == MapFlags.Shared)
            {
                // Shared anonymous memory is a shmem object, so that fork shares it rather than copying.
                backing = Kernel.CreateShmemFile($"dev/zero (deleted) mm{Id}");
                backing.Truncate(len);
            }
            else if (anonymous)
            {
                backing = null;
            }
            var vma = new Vma(this, addr, addr + len, vmFlags, backing, pgoff);
            if (backing is null)
                InsertOrMergeAnonymous(vma);
            else
                InsertVma(vma);
        }
        mapped = addr;
        return Errno.Ok;
    }

    /// <summary>
    /// munmap(2): removes every mapping in [<paramref name="addr"/>, <paramref name="addr"/> + <paramref name="length"/>),
    /// splitting VMAs at the edges; holes are fine. EINVAL for an unaligned address, zero length or a range beyond
    /// user space (nothing changes then). One MMU_NOTIFY_UNMAP invalidation covers the whole range. May sleep.
    /// </summary>
    [MayInvalidate]
    public Errno Munmap(ulong addr, ulong length)
    {
        Kernel.MightSleep("munmap");
        if ((addr & ~PageMask) != 0 || addr > TaskSize || length > TaskSize - addr)
            return Errno.EINVAL;
        ulong len = PageAlign(length);
        if (len == 0)
            return Errno.EINVAL;
        // As do_vmi_align_munmap: the VMAs leave under the write lock, which is then downgraded to a read lock
        // for the invalidation and the zap. Faults and hmm_range_fault may run meanwhile and see a hole where
        // entries are still being cleared.
        MmapLock.DownWrite();
        bool downgraded = false;
        try
        {
            if (CutsHugeTlb(addr, addr + len))
                return Errno.EINVAL;
            var doomed = DetachLocked(addr, addr + len);
            if (doomed.Count > 0)
            {
                MmapLock.DowngradeWrite();
                downgraded = true;
                ClearDetached(doomed, addr, addr + len);
            }
            return Errno.Ok;
        }
        finally
        {
            if (downgraded)
                MmapLock.UpRead();
            else
                MmapLock.UpWrite();
        }
    }

    /// <summary>
    /// mprotect(2): changes the protection of [<paramref name="addr"/>, <paramref name="addr"/> + <paramref name="length"/>).
    /// EINVAL for an unaligned address or unknown bits; ENOMEM if the range wraps or is not fully mapped (VMAs before
    /// the hole are changed, as in Linux); zero length succeeds. Each changed VMA piece gets an
    /// MMU_NOTIFY_PROTECTION_VMA invalidation if anything in it is mapped. Access is never added to existing entries:
    /// the next fault adds it. May sleep.
    /// </summary>
    [MayInvalidate]
    public Errno Mprotect(ulong addr, ulong length, Prot prot)
    {
        Kernel.MightSleep("mprotect");
        if ((addr & ~PageMask) != 0)
            return Errno.EINVAL;
        if (length == 0)
            return Errno.Ok;
        ulong end = addr + PageAlign(length);
        if (end <= addr)
            return Errno.ENOMEM;
        if (((int)prot & ~(int)(Prot.Read | Prot.Write | Prot.Exec)) != 0)
            return Errno.EINVAL;
        var access = ProtToVmFlags(prot);
        using (MmapWriteLock())
        {
            if (CutsHugeTlb(addr, end))
                return Errno.EINVAL;
            int i = FindIndex(addr);
            if (i >= _vmas.Count || _vmas[i].Start > addr)
                return Errno.ENOMEM;
            ulong tmp = addr;
            // tmp < end: a last piece that already has the protection is not split, so its VMA still starts before end.
            while (tmp < end && i < _vmas.Count && _vmas[i].Start < end)
            {
                var vma = _vmas[i];
                if (vma.Start > tmp)
                    return Errno.ENOMEM;          // a hole inside the range
                var newFlags = (vma.Flags & ~VmFlags.AccessFlags) | access;
                var mayFlags = (VmFlags)((uint)(vma.Flags & (VmFlags.MayRead | VmFlags.MayWrite | VmFlags.MayExec)) >> 4);
                if ((access & ~mayFlags) != 0)
                    return Errno.EACCES;
                ulong pieceEnd = Math.Min(end, vma.End);
                if (newFlags != vma.Flags)
                {
                    vma = Isolate(tmp, pieceEnd);
                    vma.Flags = newFlags;
                    ChangeProtection(vma, tmp, pieceEnd);
                }
                tmp = pieceEnd;
                i = FindIndex(tmp);
            }
            return tmp < end ? Errno.ENOMEM : Errno.Ok;
        }
    }

    /// <summary>
    /// madvise(2). DONTNEED (and FREE on anonymous memory) drops the pages of each VMA piece after an
    /// MMU_NOTIFY_CLEAR invalidation; HUGEPAGE/NOHUGEPAGE set VMA flags. EINVAL for unknown advice, an unaligned
    /// address, or a wrapping range; ENOMEM if part of the range is unmapped (reported after the mapped parts were
    /// advised, as in Linux). May sleep.
    /// </summary>
    [MayInvalidate]
    public Errno Madvise(ulong addr, ulong length, Advice advice)
    {
        Kernel.MightSleep("madvise");
        if (!Enum.IsDefined(advice) || (addr & ~PageMask) != 0)
            return Errno.EINVAL;
        ulong len = PageAlign(length);
        if ((length != 0 && len == 0) || addr + len < addr)
            return Errno.EINVAL;
        if (len == 0)
            return Errno.Ok;
        ulong end = addr + len;
        bool zap = advice is Advice.DontNeed or Advice.Free;
        using (zap ? MmapReadLock() : MmapWriteLock())
        {
            var unmapped = Errno.Ok;
            ulong start = addr;
            while (start < end)
            {
                int i = FindIndex(start);
                if (i >= _vmas.Count)
                    return Errno.ENOMEM;
                var vma = _vmas[i];
                if (start < vma.Start)
                {
                    unmapped = Errno.ENOMEM;
                    start = vma.Start;
                    if (start >= end)
                        break;
                }
                ulong pieceEnd = Math.Min(end, vma.End);
                switch (advice)
                {
                    case Advice.DontNeed or Advice.Free:
                        if ((vma.Flags & (VmFlags.Locked | VmFlags.PfnMap)) != 0 || (advice == Advice.Free && !vma.IsAnonymous))
                            return Errno.EINVAL;
                        if ((vma.Flags & VmFlags.HugeTlb) != 0)
                        {
                            // hugetlb: DONTNEED only, from a huge-page boundary, whole huge pages (end rounded down).
                            if (advice == Advice.Free || (start & (CpuPageTable.TableSpan - 1)) != 0)
                                return Errno.EINVAL;
                            pieceEnd &= ~(CpuPageTable.TableSpan - 1);
                            if (pieceEnd <= start)
                                break;
                        }
                        var range = InvalidateRangeStart(NotifierEvent.Clear, start, pieceEnd);
                        Zap(vma, start, pieceEnd);
                        // KernelMutant.MadviseSkipsInvalidateEnd (bug 12): the invalidation is never ended.
                        if ((Kernel.Options.Mutants & KernelMutant.MadviseSkipsInvalidateEnd) == 0)
                            InvalidateRangeEnd(range);
                        break;
                    case Advice.HugePage or Advice.NoHugePage:
                        var set = advice == Advice.HugePage ? VmFlags.HugePage : VmFlags.NoHugePage;
                        var clear = advice == Advice.HugePage ? VmFlags.NoHugePage : VmFlags.HugePage;
                        var wanted = (vma.Flags & ~clear) | set;
                        if (wanted != vma.Flags)
                            Isolate(start, pieceEnd).Flags = wanted;
                        break;
                }
                start = pieceEnd;
            }
            return unmapped;
        }
    }

    /// <summary>Removes [start, end) (do_vmi_munmap after validation). Caller holds the mmap write lock.</summary>
    private void UnmapLocked(ulong start, ulong end)
    {
        var doomed = DetachLocked(start, end);
        if (doomed.Count > 0)
            ClearDetached(doomed, start, end);
    }

    /// <summary>Splits at the edges and takes every VMA in [start, end) out of the list. Caller holds the mmap write lock.</summary>
    private List<Vma> DetachLocked(ulong start, ulong end)
    {
        MmapLock.AssertWriteHeld("munmap");
        var doomed = new List<Vma>();
        int i = FindIndex(start);
        if (i >= _vmas.Count || _vmas[i].Start >= end)
            return doomed;
        Split(start);
        Split(end);
        for (i = FindIndex(start); i < _vmas.Count && _vmas[i].Start < end; i++)
            doomed.Add(_vmas[i]);
        foreach (var v in doomed)
            RemoveVma(v);
        return doomed;
    }

    /// <summary>
    /// Invalidates [start, end) (one MMU_NOTIFY_UNMAP), zaps the detached VMAs and frees their page tables.
    /// Caller holds the mmap lock (read is enough once the VMAs are detached).
    /// </summary>
    private void ClearDetached(List<Vma> doomed, ulong start, ulong end)
    {
        MmapLock.AssertHeld("munmap");
        // KernelMutant.MunmapSkipsInvalidation (bug 6): frees the pages without telling the notifiers.
        bool silent = (Kernel.Options.Mutants & KernelMutant.MunmapSkipsInvalidation) != 0;
        if (silent)
            StartMutantSilentRange(start, end);
        var range = silent ? default : InvalidateRangeStart(NotifierEvent.Unmap, start, end);
        foreach (var v in doomed)
            Zap(v, v.Start, v.End);
        FreePageTables(start, end);
        if (silent)
            EndMutantSilentRange(start, end);
        else
            InvalidateRangeEnd(range);
        foreach (var v in doomed)
            v.File?.ReleaseIfUnmapped();
    }

    /// <summary>
    /// Clears every entry of [start, end) inside <paramref name="vma"/> (zap_page_range), dropping page references.
    /// Caller has started an invalidation covering the range. Never sleeps, so it also serves the OOM reaper.
    /// </summary>
    private void Zap(Vma vma, ulong start, ulong end)
    {
        ulong addr = start;
        while (addr < end)
        {
            var table = PageTable.Find(addr, out ulong next);
            ulong stop = Math.Min(end, next);
            if (table is not null && table.Used > 0)
            {
                int visited = 0;
                using (PageTableLock.Scoped())
                {
                    for (ulong a = addr; a < stop; a += PageSize)
                    {
                        var pte = table.Get(CpuPageTable.PteIndex(a));
                        if (pte.IsNone)
                            continue;
                        visited++;
                        SetPte(table, a, Pte.None);
                        ReleaseMapping(vma, pte);
                    }
                }
                Kernel.Scheduler.Charge(Kernel.Timing.PteVisitNs * (ulong)visited);
            }
            addr = stop;
        }
    }

    // Drops what a present entry held: the page's map count and the mapping's reference, passing the dirty bit on.
    private void ReleaseMapping(Vma vma, Pte pte)
    {
        // Migration entries hold no mapping reference (the migration holds the page); special entries none at all.
        if (pte.IsSpecial || pte.IsMigration || (!pte.IsPresent && !pte.IsDevicePrivate && !pte.IsDeviceExclusive))
            return;
        var mem = Kernel.Memory;
        ulong pfn = pte.Pfn;
        if (pte.IsDirty && vma.File is not null && mem.HasFlags(pfn, PageFlags.PageCache))
            mem.SetFlags(pfn, PageFlags.Dirty);
        mem.DecMapCount(pfn);
        mem.PutPage(pfn);
    }

    private void FreePageTables(ulong start, ulong end)
    {
        // Tables shared with a neighbouring VMA stay; only tables wholly inside the hole can go.
        int i = FindIndex(start);
        ulong lo = start, hi = end;
        if (i > 0 && _vmas[i - 1].End > (start & ~(CpuPageTable.TableSpan - 1)))
            lo = _vmas[i - 1].End;
        if (i < _vmas.Count && _vmas[i].Start < hi + CpuPageTable.TableSpan)
            hi = Math.Min(hi, _vmas[i].Start & ~(CpuPageTable.TableSpan - 1));
        using (PageTableLock.Scoped())
            PageTable.FreeEmptyTables(lo, hi);
    }

    /// <summary>change_protection: rewrites present entries of [start, end) for the VMA's new flags.</summary>
    private void ChangeProtection(Vma vma, ulong start, ulong end)
    {
        ulong first = start;
        while (first < end && PageTable.Find(first, out ulong next) is null)
            first = next;
        if (first >= end)
            return;
        bool read = (vma.Flags & VmFlags.Read) != 0;
        bool write = (vma.Flags & VmFlags.Write) != 0;
        // KernelMutant.MprotectSkipsInvalidation (bug 5): changes the entries without telling the notifiers.
        bool silent = (Kernel.Options.Mutants & KernelMutant.MprotectSkipsInvalidation) != 0;
        if (silent)
            StartMutantSilentRange(first, end);
        var range = silent ? default : InvalidateRangeStart(NotifierEvent.ProtectionVma, first, end);
        ulong addr = first;
        while (addr < end)
        {
            var table = PageTable.Find(addr, out ulong next);
            ulong stop = Math.Min(end, next);
            if (table is not null)
            {
                using (PageTableLock.Scoped())
                {
                    for (ulong a = addr; a < stop; a += PageSize)
                    {
                        var pte = table.Get(CpuPageTable.PteIndex(a));
                        if (pte.IsDevicePrivate && pte.IsWritableEntry && !write)
                        {
                            SetPte(table, a, Pte.MakeDevicePrivate(pte.Pfn, writable: false));
                            continue;
                        }
                        if (pte.IsMigration && pte.IsWritableEntry && !write)
                        {
                            // The page comes back read-only when the migration finishes.
                            SetPte(table, a, Pte.MakeMigration(pte.Pfn, writable: false));
                            continue;
                        }
                        if (pte.IsDeviceExclusive && pte.IsWritableEntry && !write)
                        {
                            SetPte(table, a, Pte.MakeDeviceExclusive(pte.Pfn, writable: false));
                            continue;
                        }
                        if (!pte.IsPresent)
                            continue;
                        // Never grant write here (the write fault decides between reuse and copy); keep it only if allowed.
                        var updated = pte.WithAccess(read, write && pte.IsWritable);
                        if (updated != pte)
                            SetPte(table, a, updated);
                    }
                }
            }
            addr = stop;
        }
        if (silent)
            EndMutantSilentRange(first, end);
        else
            InvalidateRangeEnd(range);
    }

    /// <summary>Splits VMAs so that [start, end) is exactly one VMA, and returns it. Caller holds the mmap write lock and [start, end) lies in one VMA.</summary>
    private Vma Isolate(ulong start, ulong end)
    {
        Split(start);
        Split(end);
        return _vmas[FindIndex(start)];
    }

    /// <summary>Splits the VMA containing <paramref name="addr"/> (if it starts below it) into two at <paramref name="addr"/>.</summary>
    private void Split(ulong addr)
    {
        int i = FindIndex(addr);
        if (i >= _vmas.Count || _vmas[i].Start >= addr)
            return;
        if ((addr & (CpuPageTable.TableSpan - 1)) != 0)
            SplitHugeAt(addr);                         // a huge page never straddles two VMAs
        var vma = _vmas[i];
        var right = vma.CloneRange(addr, vma.End);
        if (vma.File is { } f)
        {
            using (f.MmapSem.ScopedWrite())
            {
                vma.End = addr;
                f.AddMapping(right);
            }
        }
        else
        {
            vma.End = addr;
        }
        _vmas.Insert(i + 1, right);
    }

    private void InsertVma(Vma vma)
    {
        int i = FindIndex(vma.Start);
        _vmas.Insert(i, vma);
        if (vma.File is { } f)
        {
            using (f.MmapSem.ScopedWrite())
                f.AddMapping(vma);
        }
    }

    // vma_merge for the common case: a new private anonymous area next to ones with the same flags grows them.
    private void InsertOrMergeAnonymous(Vma vma)
    {
        int i = FindIndex(vma.Start);
        var prev = i > 0 ? _vmas[i - 1] : null;
        var next = i < _vmas.Count ? _vmas[i] : null;
        bool mergePrev = prev is { File: null } && prev.End == vma.Start && prev.Flags == vma.Flags;
        bool mergeNext = next is { File: null } && next.Start == vma.End && next.Flags == vma.Flags;
        if (mergePrev && mergeNext)
        {
            prev!.End = next!.End;
            prev.HasAnonPages |= next.HasAnonPages;
            _vmas.RemoveAt(i);
        }
        else if (mergePrev)
        {
            prev!.End = vma.End;
        }
        else if (mergeNext)
        {
            next!.Start = vma.Start;
        }
        else
        {
            _vmas.Insert(i, vma);
        }
    }

    private void RemoveVma(Vma vma)
    {
        _vmas.Remove(vma);
        if (vma.File is { } f)
        {
            using (f.MmapSem.ScopedWrite())
                f.RemoveMapping(vma);
        }
    }

    /// <summary>get_unmapped_area, top-down below <see cref="MmapBase"/>; an aligned free hint is honoured.</summary>
    private bool TryGetUnmappedArea(ulong hint, ulong len, out ulong addr, ulong align = PageSize)
    {
        hint = (hint + align - 1) & ~(align - 1);
        if (hint != 0 && hint <= TaskSize - len && IsFree(hint, hint + len))
        {
            addr = hint;
            return true;
        }
        ulong top = MmapBase;
        for (int i = _vmas.Count - 1; i >= -1; i--)
        {
            if (i >= 0 && _vmas[i].Start >= top)
                continue;
            ulong gapStart = i >= 0 ? _vmas[i].End : PageSize * 16;
            if (gapStart < top && top - gapStart >= len && ((top - len) & ~(align - 1)) >= gapStart)
            {
                addr = (top - len) & ~(align - 1);
                return true;
            }
            if (i >= 0)
                top = Math.Min(top, _vmas[i].Start);
        }
        addr = 0;
        return false;
    }

    // A hugetlb VMA can only be cut at 2 MiB boundaries (hugetlb_split: EINVAL otherwise).
    private bool CutsHugeTlb(ulong start, ulong end)
    {
        const ulong mask = CpuPageTable.TableSpan - 1;
        for (int i = FindIndex(start); i < _vmas.Count && _vmas[i].Start < end; i++)
        {
            var v = _vmas[i];
            if ((v.Flags & VmFlags.HugeTlb) != 0 && (((start > v.Start ? start : 0) & mask) != 0 || ((end < v.End ? end : 0) & mask) != 0))
                return true;
        }
        return false;
    }

    private bool IsFree(ulong start, ulong end)
    {
        int i = FindIndex(start);
        return i >= _vmas.Count || _vmas[i].Start >= end;
    }

    internal static ulong PageAlign(ulong length) => (length + PageSize - 1) & PageMask;

    private static VmFlags ProtToVmFlags(Prot prot)
    {
        var f = VmFlags.None;
        if ((prot & Prot.Read) != 0)
            f |= VmFlags.Read;
        if ((prot & Prot.Write) != 0)
            f |= VmFlags.Write | VmFlags.Read;
        if ((prot & Prot.Exec) != 0)
            f |= VmFlags.Exec;
        return f;
    }
}
