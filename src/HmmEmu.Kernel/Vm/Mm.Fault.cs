using HmmEmu.Annotations;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Kernel.Vm;

public sealed partial class Mm
{
    /// <summary>
    /// handle_mm_fault: makes the page at <paramref name="addr"/> present, and writable if <paramref name="flags"/>
    /// asks, by the Linux paths: zero page on an anonymous read, a fresh zeroed page on an anonymous write, the
    /// page-cache page for a file (a private copy on a private write), copy-on-write break (after an
    /// MMU_NOTIFY_CLEAR of the page) or reuse of an exclusive anonymous page. Caller holds the mmap lock (read is
    /// enough) and passes the VMA containing the address. May sleep.
    /// </summary>
    [MayInvalidate]
    public VmFaultResult HandleMmFault(Vma vma, ulong addr, FaultFlags flags)
    {
        ArgumentNullException.ThrowIfNull(vma);
        MmapLock.AssertHeld("handle_mm_fault");
        if (!ReferenceEquals(vma.Mm, this) || !vma.Contains(addr))
            throw new ArgumentException($"handle_mm_fault: address 0x{addr:x} is not inside {vma} of mm {Id}. Look the VMA up with VmaLookup under the mmap lock.", nameof(vma));
        Kernel.MightSleep("handle_mm_fault");
        addr &= PageMask;
        bool write = (flags & FaultFlags.Write) != 0;
        if (write ? (vma.Flags & VmFlags.Write) == 0 : (vma.Flags & VmFlags.Read) == 0)
            return VmFaultResult.SigSegv;
        Kernel.Scheduler.Charge(Kernel.Timing.CpuPageFaultNs);
        Kernel.Trace.Record(s_faultEvent, (ulong)Id, addr, (ulong)flags);

        var pte = PageTable.Get(addr);
        if (pte.IsNone)
        {
            if (vma.IsDeviceMapping)
                return VmFaultResult.SigBus;           // the driver populated what it maps; nothing to fault in
            return vma.File is null ? DoAnonymousPage(vma, addr, write) : DoFileFault(vma, addr, write);
        }
        if (pte.IsDevicePrivate)
            return DoDevicePrivateFault(vma, addr, pte);
        if (pte.IsDeviceExclusive)
            return RestoreExclusive(addr, pte);
        if (pte.IsMigration)
        {
            WaitMigrationEntry(addr, pte);
            return VmFaultResult.Ok;                   // the access retries against whatever replaced it
        }
        if (pte.IsProtNone)
            return RestoreAccess(addr, pte, vma);
        if (write && !pte.IsWritable)
            return DoWpPage(vma, addr, pte);
        return VmFaultResult.Ok;
    }

    private VmFaultResult DoAnonymousPage(Vma vma, ulong addr, bool write)
    {
        bool hugetlb = (vma.Flags & VmFlags.HugeTlb) != 0;
        bool thp = write && (vma.Flags & (VmFlags.HugePage | VmFlags.NoHugePage)) == VmFlags.HugePage;
        if (hugetlb || thp)
        {
            var r = DoHugePage(vma, addr);
            if (r != VmFaultResult.Oom || hugetlb)
                return r;                              // a transparent huge page falls back to small pages
        }
        if (!write)
        {
            // A read of never-touched anonymous memory maps the shared zero page, read-only. It was none before,
            // so nothing can have been mirrored: no invalidation.
            if ((vma.Flags & (VmFlags.HugePage | VmFlags.NoHugePage)) == VmFlags.HugePage && MapHugeZeroPage(vma, addr))
                return VmFaultResult.Ok;
            using (PageTableLock.Scoped())
            {
                var t = PageTable.Ensure(addr);
                if (t.Get(CpuPageTable.PteIndex(addr)).IsNone)
                    SetPte(t, addr, Pte.Make(PhysicalMemory.ZeroPfn, writable: false, special: true));
            }
            return VmFaultResult.Ok;
        }
        var mem = Kernel.Memory;
        if (mem.AllocPage(Gfp.HighUser | Gfp.Zero, out ulong pfn) != Errno.Ok)
            return VmFaultResult.Oom;
        mem.SetOwner(pfn, this, addr >> PhysicalMemory.PageShift);
        mem.SetFlags(pfn, PageFlags.Anon | PageFlags.Uptodate);
        vma.HasAnonPages = true;
        InstallNew(addr, pfn, writable: true);
        return VmFaultResult.Ok;
    }

    /// <summary>
    /// do_huge_pmd_anonymous_page / hugetlb_no_page: maps the whole 2 MiB block around <paramref name="addr"/> with a
    /// fresh zeroed huge page, if the block lies inside the VMA and nothing in it is mapped yet. Oom if it cannot.
    /// </summary>
    private VmFaultResult DoHugePage(Vma vma, ulong addr)
    {
        ulong block = addr & ~(CpuPageTable.TableSpan - 1);
        if (block < vma.Start || block + CpuPageTable.TableSpan > vma.End || PageTable.Find(block, out _) is { Used: > 0 })
            return VmFaultResult.Oom;
        var mem = Kernel.Memory;
        if (mem.AllocContiguous(9, Gfp.HighUser | Gfp.Zero, out ulong first) != Errno.Ok)
            return VmFaultResult.Oom;
        int pages = PteTable.Count;
        for (int i = 0; i < pages; i++)
        {
            mem.SetOwner(first + (ulong)i, this, (block >> PhysicalMemory.PageShift) + (ulong)i);
            mem.SetFlags(first + (ulong)i, PageFlags.Anon | PageFlags.Uptodate);
        }
        vma.HasAnonPages = true;
        bool installed = false;
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Ensure(block);
            if (t.Used == 0)
            {
                bool writable = (vma.Flags & VmFlags.Write) != 0;
                for (int i = 0; i < pages; i++)
                {
                    ulong a = block + ((ulong)i << PhysicalMemory.PageShift);
                    mem.IncMapCount(first + (ulong)i);
                    SetPte(t, a, Pte.Make(first + (ulong)i, writable, huge: true));
                }
                installed = true;
            }
        }
        if (!installed)
        {
            for (int i = 0; i < pages; i++)
                mem.PutPage(first + (ulong)i);
        }
        return VmFaultResult.Ok;
    }

    /// <summary>
    /// do_huge_pmd_anonymous_page on a read (the huge zero page): maps the zero page over the whole 2 MiB block around
    /// <paramref name="addr"/>, read-only and huge, if the block lies inside the VMA and nothing in it is mapped yet.
    /// A later write splits the block and gets a small page, as when no huge page can be allocated.
    /// </summary>
    private bool MapHugeZeroPage(Vma vma, ulong addr)
    {
        ulong block = addr & ~(CpuPageTable.TableSpan - 1);
        if (block < vma.Start || block + CpuPageTable.TableSpan > vma.End)
            return false;
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Ensure(block);
            if (t.Used != 0)
                return false;
            var zero = Pte.Make(PhysicalMemory.ZeroPfn, writable: false, special: true, huge: true);
            for (int i = 0; i < PteTable.Count; i++)
                SetPte(t, block + ((ulong)i << PhysicalMemory.PageShift), zero);
            return true;
        }
    }

    private VmFaultResult DoFileFault(Vma vma, ulong addr, bool write)
    {
        var file = vma.File!;
        ulong index = vma.FileIndex(addr);
        if (index >= (file.Size + PageSize - 1) >> PhysicalMemory.PageShift)
            return VmFaultResult.SigBus;
        if (file.GetCachePage(index, out ulong cachePfn) != Errno.Ok)
            return VmFaultResult.Oom;
        var mem = Kernel.Memory;
        if (write && !vma.IsShared)
        {
            // do_cow_fault: a private write gets its own copy of the file page.
            if (mem.AllocPage(Gfp.HighUser, out ulong copy) != Errno.Ok)
            {
                mem.PutPage(cachePfn);
                return VmFaultResult.Oom;
            }
            mem.CopyPage(copy, cachePfn);
            mem.PutPage(cachePfn);
            mem.SetOwner(copy, this, addr >> PhysicalMemory.PageShift);
            mem.SetFlags(copy, PageFlags.Anon | PageFlags.Uptodate);
            vma.HasAnonPages = true;
            InstallNew(addr, copy, writable: true);
            return VmFaultResult.Ok;
        }
        // A shared mapping maps the cache page itself: writable at once for shmem or a write fault, otherwise
        // read-only so that the first write is seen (dirty tracking). A private read maps it read-only (COW later).
        bool writable = vma.IsShared && (vma.Flags & VmFlags.Write) != 0 && (write || file.IsShmem);
        if (writable)
            mem.SetFlags(cachePfn, PageFlags.Dirty);
        InstallNew(addr, cachePfn, writable);
        return VmFaultResult.Ok;
    }

    // Installs a page into a none entry, handing the caller's reference to the mapping; drops it if it lost a race.
    private void InstallNew(ulong addr, ulong pfn, bool writable)
    {
        var mem = Kernel.Memory;
        bool installed = false;
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Ensure(addr);
            if (t.Get(CpuPageTable.PteIndex(addr)).IsNone)
            {
                mem.IncMapCount(pfn);
                SetPte(t, addr, Pte.Make(pfn, writable));
                installed = true;
            }
        }
        if (!installed)
            mem.PutPage(pfn);
    }

    private VmFaultResult RestoreAccess(ulong addr, Pte pte, Vma vma)
    {
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Find(addr, out _);
            if (t is not null && t.Get(CpuPageTable.PteIndex(addr)) == pte)
                SetPte(t, addr, pte.WithAccess((vma.Flags & VmFlags.Read) != 0, writable: false));
        }
        return VmFaultResult.Ok;
    }

    /// <summary>do_wp_page: a write to a present, read-only entry of a writable VMA.</summary>
    private VmFaultResult DoWpPage(Vma vma, ulong addr, Pte orig)
    {
        var mem = Kernel.Memory;
        ulong oldPfn = orig.Pfn;
        if (!orig.IsZeroPage)
        {
            using (PageTableLock.Scoped())
            {
                var t = PageTable.Find(addr, out _)!;
                if (t.Get(CpuPageTable.PteIndex(addr)) != orig)
                    return VmFaultResult.Ok;            // raced: let the access retry
                bool reuse = vma.IsShared ||
                    (mem.HasFlags(oldPfn, PageFlags.Anon) && mem.MapCount(oldPfn) == 1 && mem.RefCount(oldPfn) == 1);
                if (reuse)
                {
                    // wp_page_reuse / wp_page_shared: only adds write access, so no invalidation.
                    if (vma.IsShared)
                        mem.SetFlags(oldPfn, PageFlags.Dirty);
                    if (orig.IsHuge)
                        SplitHuge(t);                  // only this page becomes writable: the block is no longer uniform
                    SetPte(t, addr, t.Get(CpuPageTable.PteIndex(addr)).MakeWritable());
                    return VmFaultResult.Ok;
                }
                mem.GetPage(oldPfn);                   // keep the source alive while copying outside the lock
            }
        }
        return WpPageCopy(vma, addr, orig);
    }

    /// <summary>wp_page_copy: copy-on-write break; the old entry is replaced after MMU_NOTIFY_CLEAR of the page.</summary>
    private VmFaultResult WpPageCopy(Vma vma, ulong addr, Pte orig)
    {
        var mem = Kernel.Memory;
        bool fromZero = orig.IsZeroPage;
        ulong oldPfn = orig.Pfn;
        if (mem.AllocPage(fromZero ? Gfp.HighUser | Gfp.Zero : Gfp.HighUser, out ulong copy) != Errno.Ok)
        {
            if (!fromZero)
                mem.PutPage(oldPfn);
            return VmFaultResult.Oom;
        }
        if (!fromZero)
        {
            mem.CopyPage(copy, oldPfn);
            Kernel.Scheduler.Charge(Kernel.Timing.CopyNs(PageSize));
        }
        mem.SetOwner(copy, this, addr >> PhysicalMemory.PageShift);
        mem.SetFlags(copy, PageFlags.Anon | PageFlags.Uptodate);
        vma.HasAnonPages = true;
        // KernelMutant.CowSkipsInvalidation (bug 20): breaks the COW without telling the notifiers.
        bool silent = (Kernel.Options.Mutants & KernelMutant.CowSkipsInvalidation) != 0;
        if (silent)
            StartMutantSilentRange(addr, addr + PageSize);
        var range = silent ? default : InvalidateRangeStart(NotifierEvent.Clear, addr, addr + PageSize);
        bool replaced = false;
        using (PageTableLock.Scoped())
        {
            var t = PageTable.Find(addr, out _);
            if (t is not null && t.Get(CpuPageTable.PteIndex(addr)) == orig)
            {
                mem.IncMapCount(copy);
                SetPte(t, addr, Pte.Make(copy, writable: true));
                ReleaseMapping(vma, orig);
                replaced = true;
            }
        }
        if (silent)
            EndMutantSilentRange(addr, addr + PageSize);
        else
            InvalidateRangeEnd(range);
        if (!replaced)
            mem.PutPage(copy);
        if (!fromZero)
            mem.PutPage(oldPfn);
        return VmFaultResult.Ok;
    }

    /// <summary>
    /// copy_from_user: the CPU reads <paramref name="destination"/>.Length bytes at <paramref name="addr"/> of this
    /// address space through the software MMU, faulting pages in as needed. EFAULT where the access would raise
    /// SIGSEGV or SIGBUS (bytes before that point are copied); ENOMEM if a fault ran out of memory. May sleep.
    /// </summary>
    [MayInvalidate]
    public Errno CopyFromUser(ulong addr, Span<byte> destination) => Access(addr, destination, default, write: false, out _, out _);

    /// <summary>copy_to_user: the CPU writes <paramref name="source"/> at <paramref name="addr"/>; see <see cref="CopyFromUser"/>.</summary>
    [MayInvalidate]
    public Errno CopyToUser(ulong addr, ReadOnlySpan<byte> source) => Access(addr, default, source, write: true, out _, out _);

    /// <summary>
    /// A CPU access as a user thread performs it: like <see cref="CopyFromUser"/>/<see cref="CopyToUser"/> but also
    /// reports which fault outcome stopped it and at which address (the whole range's end on success).
    /// </summary>
    [MayInvalidate]
    public Errno Access(ulong addr, Span<byte> destination, ReadOnlySpan<byte> source, bool write, out VmFaultResult outcome, out ulong stoppedAt)
    {
        outcome = VmFaultResult.Ok;
        stoppedAt = addr;
        int length = write ? source.Length : destination.Length;
        int done = 0;
        var mem = Kernel.Memory;
        while (done < length)
        {
            ulong a = addr + (ulong)done;
            stoppedAt = a;
            if (a < addr || a >= TaskSize)
            {
                outcome = VmFaultResult.SigSegv;
                return Errno.EFAULT;
            }
            int inPage = (int)(a & (PageSize - 1));
            int n = Math.Min(length - done, PhysicalMemory.PageSize - inPage);
            bool copied = false;
            using (PageTableLock.Scoped())
            {
                var t = PageTable.Find(a, out _);
                if (t is not null)
                {
                    var pte = t.Get(CpuPageTable.PteIndex(a));
                    if (write ? pte.IsWritable : pte.IsReadable)
                    {
                        var page = mem.PageBytes(pte.Pfn).Slice(inPage, n);
                        if (write)
                            source.Slice(done, n).CopyTo(page);
                        else
                            page.CopyTo(destination.Slice(done, n));
                        copied = true;
                    }
                }
            }
            if (copied)
            {
                done += n;
                continue;
            }
            outcome = FaultIn(a, write);
            if (outcome != VmFaultResult.Ok)
                return outcome == VmFaultResult.Oom ? Errno.ENOMEM : Errno.EFAULT;
        }
        stoppedAt = addr + (ulong)done;
        return Errno.Ok;
    }

    /// <summary>
    /// A CPU atomic add on the naturally aligned 64-bit word at <paramref name="addr"/> (lock xadd): faults the page
    /// in writable, then updates it under the page-table lock. EINVAL if unaligned, EFAULT on SIGSEGV/SIGBUS. May sleep.
    /// </summary>
    [MayInvalidate]
    public Errno AtomicAdd64(ulong addr, long value, out long previous)
    {
        previous = 0;
        if ((addr & 7) != 0)
            return Errno.EINVAL;
        var mem = Kernel.Memory;
        while (true)
        {
            using (PageTableLock.Scoped())
            {
                var t = PageTable.Find(addr, out _);
                if (t is not null && t.Get(CpuPageTable.PteIndex(addr)) is { IsWritable: true } pte)
                {
                    var word = mem.PageBytes(pte.Pfn).Slice((int)(addr & (PageSize - 1)), 8);
                    previous = BitConverter.ToInt64(word);
                    BitConverter.TryWriteBytes(word, previous + value);
                    return Errno.Ok;
                }
            }
            var r = FaultIn(addr, write: true);
            if (r != VmFaultResult.Ok)
                return r == VmFaultResult.Oom ? Errno.ENOMEM : Errno.EFAULT;
        }
    }

    // The CPU's page-fault entry: look the VMA up under the mmap read lock and handle the fault.
    private VmFaultResult FaultIn(ulong addr, bool write)
    {
        using (MmapReadLock())
        {
            var vma = VmaLookup(addr);
            if (vma is null)
                return VmFaultResult.SigSegv;
            return HandleMmFault(vma, addr, write ? FaultFlags.Write : FaultFlags.None);
        }
    }
}
