using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Gpu.Driver;

// The fault path: fault-around windows, the read_begin / range_fault / lock / read_retry / commit loop, atomics through make_device_exclusive, and the leaf updates.
public sealed partial class GpuContext
{
    /// <summary>
    /// Maps [<paramref name="start"/>, <paramref name="end"/>) for <paramref name="access"/>: the read_begin /
    /// range_fault / lock / read_retry / commit loop (atomics through make_device_exclusive, page by page). Returns
    /// EFAULT or EPERM when the process cannot give that access (the caller cancels the fault). Caller holds the
    /// migration lock (so the context cannot be torn down meanwhile). May sleep.
    /// </summary>
    internal Errno ResolveFault(ulong start, ulong end, GpuFaultAccess access, ulong windowBytes = 0)
    {
        _device.Migrator.AssertLockHeld("GpuContext.ResolveFault");
        if (IsClosed || Volatile.Read(ref _mmGone) != 0)
            return Errno.EFAULT;
        if (end > Mm.TaskSize || end <= start)
            return Errno.EFAULT;
        if (!_mm.MmGetNotZero())
            return Errno.EFAULT;
        try
        {
            if (access != GpuFaultAccess.Atomic && windowBytes > PageSize)
                (start, end) = Window(start, end, windowBytes);
            var err = _pt.EnsureTables(start, end);
            if (err != Errno.Ok)
                return err;
            if (access == GpuFaultAccess.Atomic)
            {
                // Pages in our VRAM are mapped with the atomic right by the ordinary path; only system pages need
                // make_device_exclusive (which would pull a VRAM page back to system memory first).
                err = ResolveRange(start, end, write: true);
                for (ulong va = start; va < end && err == Errno.Ok; va += PageSize)
                {
                    if (!HasAtomicMapping(va))
                        err = ResolveAtomic(va);
                }
                return err;
            }
            return ResolveRange(start, end, write: access == GpuFaultAccess.Write);
        }
        finally
        {
            _mm.MmPut();
        }
    }

    /// <summary>
    /// The nap before resolving a fault on <paramref name="page"/>: 0 for a fault on a new page, and a doubling multiple
    /// of <paramref name="baseNs"/> from the second repeat in a row of a fault on the same page (see
    /// <see cref="GpuDriverOptions.ThrashThrottleNs"/>). Fault work queue only.
    /// </summary>
    internal ulong ThrottleFor(ulong page, ulong baseNs)
    {
        if (page != _lastFaultPage)
        {
            _lastFaultPage = page;
            _repeatFaults = 0;
            return 0;
        }
        _repeatFaults++;
        return _repeatFaults < 2 ? 0 : baseNs << Math.Min(_repeatFaults - 2, 8);
    }

    /// <summary>
    /// Whether faults of this context may still migrate the window of <paramref name="address"/>: false once they have
    /// moved it <paramref name="limit"/> times (it thrashes; see <see cref="GpuDriverOptions.ThrashMigrations"/>).
    /// Fault work queue only.
    /// </summary>
    internal bool MayMigrateWindow(ulong address, ulong windowBytes, int limit)
    {
        ForgetUnmappedWindows(windowBytes);
        return limit <= 0 || !_windowMigrations.TryGetValue(address / windowBytes, out int n) || n < limit;
    }

    /// <summary>Counts a fault-driven migration of the window of <paramref name="address"/> that moved pages. Fault work queue only.</summary>
    internal void CountWindowMigration(ulong address, ulong windowBytes)
    {
        ulong key = address / windowBytes;
        _windowMigrations.TryGetValue(key, out int n);
        _windowMigrations[key] = n + 1;
        // After the count: an munmap during the migration (which holds the mmap lock only per chunk) drops it too.
        ForgetUnmappedWindows(windowBytes);
    }

    /// <summary>Counts a fault on the window of <paramref name="address"/>; true when it reached the migrate-on-fault threshold (the count restarts). Fault work queue only.</summary>
    internal bool CountWindowFault(ulong address, ulong windowBytes, int threshold)
    {
        if (threshold <= 0)
            return false;
        ForgetUnmappedWindows(windowBytes);
        ulong key = address / windowBytes;
        _windowFaults.TryGetValue(key, out int n);
        if (++n < threshold)
        {
            _windowFaults[key] = n;
            return false;
        }
        _windowFaults.Remove(key);
        return true;
    }

    /// <summary>
    /// Drops the migration and fault counts of every window that an munmap touched since the last call: whatever is
    /// mapped there now is new memory, and counting its first migration as a repeat of the old buffer's would make a
    /// process that frees and reallocates buffers at the same addresses look like it thrashes (after
    /// <see cref="GpuDriverOptions.ThrashMigrations"/> rounds its fresh buffers would stop moving to VRAM). Takes
    /// _ptLock only when an munmap happened. Fault work queue only.
    /// </summary>
    private void ForgetUnmappedWindows(ulong windowBytes)
    {
        if (Volatile.Read(ref _unmappedPending) == 0)
            return;
        (ulong Start, ulong End)[] ranges;
        bool all;
        using (_ptLock.Scoped())
        {
            Volatile.Write(ref _unmappedPending, 0);
            ranges = [.. _unmapped];
            _unmapped.Clear();
            all = _unmappedOverflow;
            _unmappedOverflow = false;
        }
        if (all)
        {
            _windowMigrations.Clear();
            _windowFaults.Clear();
            return;
        }
        foreach (var (start, end) in ranges)
        {
            Forget(_windowMigrations, start, end, windowBytes);
            Forget(_windowFaults, start, end, windowBytes);
        }

        // Removes the windows that overlap [start, end): key by key for a short range, else by a scan of the keys
        // (the same keys go either way, whatever the dictionary's order).
        static void Forget(Dictionary<ulong, int> counts, ulong start, ulong end, ulong windowBytes)
        {
            if (counts.Count == 0 || end <= start)
                return;
            ulong first = start / windowBytes, last = (end - 1) / windowBytes;
            if (last - first < (ulong)counts.Count)
            {
                for (ulong key = first; key <= last; key++)
                    counts.Remove(key);
                return;
            }
            foreach (ulong key in counts.Keys.Where(k => k >= first && k <= last).ToList())
                counts.Remove(key);
        }
    }

    /// <summary>
    /// Records that window <paramref name="window"/> faulted and says whether it directly follows the window that
    /// faulted before (a kernel streaming through memory). Returns true. Fault work queue only.
    /// </summary>
    internal bool NoteFaultWindow(ulong window, out bool streaming)
    {
        streaming = window == _lastFaultWindow + 1;
        _lastFaultWindow = window;
        return true;
    }

    /// <summary>The start of the VMA holding <paramref name="address"/> (the address itself if none). May sleep.</summary>
    internal ulong VmaStartOf(ulong address)
    {
        using (_mm.MmapReadLock())
            return _mm.VmaLookup(address) is { } v && v.Start <= address ? v.Start : address;
    }

    /// <summary>The end of the VMA holding <paramref name="address"/> (the next page if none). May sleep.</summary>
    internal ulong VmaEndOf(ulong address)
    {
        using (_mm.MmapReadLock())
            return _mm.VmaLookup(address) is { } v && v.Start <= address ? v.End : (address & ~(PageSize - 1)) + PageSize;
    }

    // The fault-around window: [start, end) grown to windowBytes alignment, inside the VMA that holds start.
    private (ulong Start, ulong End) Window(ulong start, ulong end, ulong windowBytes)
    {
        using (_mm.MmapReadLock())
        {
            var vma = _mm.VmaLookup(start);
            if (vma is null || vma.Start > start)
                return (start, end);
            ulong lo = Math.Max(vma.Start, start / windowBytes * windowBytes);
            ulong hi = Math.Min(vma.End, (end + windowBytes - 1) / windowBytes * windowBytes);
            return (lo, hi);
        }
    }

    // The nap before retrying a read-only VRAM page that another migration holds (virtual time).
    private const ulong BusyPageNapNs = 1_000;

    private Errno ResolveRange(ulong start, ulong end, bool write)
    {
        ulong deadline = _kernel.Clock.Now + _device.Options.RangeTimeoutNs;
        var range = new HmmRange(_notifier, start, end) { DevPrivateOwner = _device };
        while (true)
        {
            if (_kernel.Clock.Now > deadline)
                return Errno.EBUSY;
            range.DefaultFlags = HmmPfn.ReqFault | (write ? HmmPfn.ReqWrite : 0);
            range.NotifierSeq = _notifier.ReadBegin();
            Errno err;
            using (_mm.MmapReadLock())
                err = Hmm.RangeFault(range);
            if (err == Errno.EBUSY)
                continue;
            if (err != Errno.Ok)
                return err;
            if (write && HasReadOnlyVramPage(range))
            {
                // range_fault reports our own device-private pages as they are, without faulting them writable (so
                // does Linux). A read-only one (shared after fork, or migrated while read-only) must come back to
                // system memory, where the write fault breaks the sharing; then fault again. If nothing moved, another
                // migration holds the page (a CPU fault of the other process sharing it): give it time, then retry,
                // until the range timeout above.
                _device.Migrator.ToSystemLocked(this, start, end, out long back);
                CountMigrated(0, back);
                if (back == 0)
                    _kernel.Scheduler.Sleep(BusyPageNapNs);
                continue;
            }
            _ptLock.Lock();
            try
            {
                if (_notifier.ReadRetry(range.NotifierSeq))
                    continue;                       // an invalidation raced us: fault again
                return Commit(range, write);
            }
            finally
            {
                _ptLock.Unlock();
            }
        }
    }

    // nouveau_atomic_range_fault: make the page device-exclusive, then map it with the atomic right.
    private Errno ResolveAtomic(ulong va)
    {
        ulong deadline = _kernel.Clock.Now + _device.Options.RangeTimeoutNs;
        var mem = _kernel.Memory;
        while (true)
        {
            if (_kernel.Clock.Now > deadline)
                return Errno.EBUSY;
            ulong seq = _notifier.ReadBegin();
            ulong pfn;
            Errno err;
            using (_mm.MmapReadLock())
                err = _mm.MakeDeviceExclusive(va, _device, out pfn);
            if (err != Errno.Ok)
                return err;
            try
            {
                while (true)
                {
                    _ptLock.Lock();
                    try
                    {
                        if (!_notifier.ReadRetry(seq))
                            return MapPage(va, pfn, PtePermissions.ReadWrite | PtePermissions.Atomic, _pt.LeafTable(va));
                    }
                    finally
                    {
                        _ptLock.Unlock();
                    }
                    // An invalidation ran since seq, possibly anywhere in the process (one notifier covers it all).
                    // Calling MakeDeviceExclusive again would restore our own exclusive entry and make it again, which
                    // is itself an invalidation: every retry would fail the same way. We hold the page lock, and a CPU
                    // access restores an exclusive entry only under it, so check under a fresh sequence that the entry
                    // is still ours; only if it is gone, start over.
                    if (_kernel.Clock.Now > deadline)
                        return Errno.EBUSY;
                    seq = _notifier.ReadBegin();
                    bool stillOurs;
                    using (_mm.MmapReadLock())
                    {
                        var pte = _mm.GetPte(va);
                        stillOurs = pte.IsDeviceExclusive && pte.Pfn == pfn;
                    }
                    if (!stillOurs)
                        break;
                }
            }
            finally
            {
                mem.UnlockPage(pfn);
                mem.PutPage(pfn);
            }
        }
    }

    /// <summary>
    /// Whether every page of [<paramref name="start"/>, <paramref name="end"/>) is mapped on the device with the rights
    /// <paramref name="access"/> needs. Takes the page-table lock. Caller holds the migration lock. May sleep.
    /// </summary>
    internal bool IsMapped(ulong start, ulong end, GpuFaultAccess access)
    {
        var need = access switch
        {
            GpuFaultAccess.Write => PtePermissions.ReadWrite,
            GpuFaultAccess.Atomic => PtePermissions.ReadWrite | PtePermissions.Atomic,
            _ => PtePermissions.Read,
        };
        using (_ptLock.Scoped())
        {
            if (IsClosed)
                return false;
            Span<ulong> leaves = default;
            for (ulong va = start; va < end; va += PageSize)
            {
                if (va == start || (va & (DevicePageTable.LargePageSize - 1)) == 0)
                    leaves = _pt.LeafTable(va);
                if (leaves.IsEmpty)
                    return false;
                var leaf = new DevicePte(Volatile.Read(ref leaves[(int)((va >> PhysicalMemory.PageShift) & (DevicePageTable.EntriesPerTable - 1))]));
                if (!leaf.IsLeaf || (leaf.Permissions & need) != need)
                    return false;
            }
            return true;
        }
    }

    private bool HasAtomicMapping(ulong va)
    {
        using (_ptLock.Scoped())
            return (_pt.GetLeaf(va).Permissions & PtePermissions.Atomic) != 0;
    }

    /// <summary>
    /// Whether [<paramref name="start"/>, <paramref name="end"/>) holds a page a migration to VRAM could move: one in
    /// system memory, or one not populated yet (its first touch would land there). A snapshot through range_fault
    /// without faulting; on any error it says yes and lets the migration find out. Caller holds the migration lock and
    /// a reference on the mm. May sleep.
    /// </summary>
    internal bool HasPagesOutsideVram(ulong start, ulong end)
    {
        var range = new HmmRange(_notifier, start, end) { DevPrivateOwner = _device, DefaultFlags = 0 };
        range.NotifierSeq = _notifier.ReadBegin();
        Errno err;
        using (_mm.MmapReadLock())
            err = Hmm.RangeFault(range);
        if (err != Errno.Ok)
            return true;
        var vram = _device.Vram;
        foreach (ulong e in range.HmmPfns)
        {
            if ((e & HmmPfn.Valid) == 0 || !vram.Owns(HmmPfn.ToPfn(e)))
                return true;
        }
        return false;
    }

    private bool HasReadOnlyVramPage(HmmRange range)
    {
        var vram = _device.Vram;
        foreach (ulong e in range.HmmPfns)
        {
            if ((e & (HmmPfn.Valid | HmmPfn.Write)) == HmmPfn.Valid && vram.Owns(HmmPfn.ToPfn(e)))
                return true;
        }
        return false;
    }

    // Writes the faulted pages into the device page table. Caller holds _ptLock and has checked ReadRetry.
    private Errno Commit(HmmRange range, bool write)
    {
        _ptLock.AssertHeld("GpuContext.Commit");
        var pfns = range.HmmPfns;
        Span<ulong> leaves = default;
        for (int i = 0; i < range.PageCount; i++)
        {
            ulong e = pfns[i];
            if ((e & HmmPfn.Error) != 0 || (e & HmmPfn.Valid) == 0)
                return Errno.EFAULT;
            bool writable = (e & HmmPfn.Write) != 0;
            if (write && !writable)
                return Errno.EPERM;
            ulong va = range.Start + ((ulong)i << PhysicalMemory.PageShift);
            if (i == 0 || (va & (DevicePageTable.LargePageSize - 1)) == 0)
                leaves = _pt.LeafTable(va);          // one walk per 2 MiB region, not per page
            var err = MapPage(va, HmmPfn.ToPfn(e), writable ? PtePermissions.ReadWrite : PtePermissions.Read, leaves);
            if (err != Errno.Ok)
                return err;
        }
        return Errno.Ok;
    }

    // Maps one page: a new leaf gets its own DMA mapping; a leaf for the same page only changes its rights (and the
    // TLB entry that may cache the old rights is invalidated, or the replayed access would fault again).
    // Caller holds _ptLock.
    private Errno MapPage(ulong va, ulong pfn, PtePermissions rights, Span<ulong> leaves)
    {
        if (leaves.IsEmpty)
            throw new InvalidOperationException($"GPU page table: no leaf table for 0x{va:x}; EnsureTables must run before the commit.");
        ref ulong slot = ref leaves[(int)((va >> PhysicalMemory.PageShift) & (DevicePageTable.EntriesPerTable - 1))];
        var old = new DevicePte(Volatile.Read(ref slot));
        ulong bus;
        var vram = _device.Vram;
        if (vram.Owns(pfn))
        {
            // Our VRAM: the device reaches it directly (no DMA mapping), and atomics are native there.
            var leaf = DevicePte.Leaf(Aperture.Vram, vram.OffsetOf(pfn), rights | PtePermissions.Atomic);
            vram.Touch(pfn);
            if (old.IsValid && old.Aperture == Aperture.Vram && old.Address == leaf.Address)
            {
                if ((old.Permissions | leaf.Permissions) == old.Permissions)
                    return Errno.Ok;           // never take rights away here (see below)
                leaf = leaf.WithPermissions(old.Permissions | leaf.Permissions);
            }
            Volatile.Write(ref slot, leaf.Value);
            if (old.IsValid)
            {
                _device.InvalidateTlb(Id, va, va + PageSize);
                if (old.Aperture == Aperture.System)
                    _device.Pci.DmaUnmapPage(old.Address);
            }
            Interlocked.Increment(ref _pagesMapped);
            return Errno.Ok;
        }
        // This kernel's DMA addresses are the physical addresses (no IOMMU), so a leaf's page is its address's pfn.
        if (old.IsValid && old.Aperture == Aperture.System && old.Pfn == pfn)
        {
            // The same page: only ever add rights here (a stale read record must not take away write or atomic);
            // invalidations are what take rights away.
            if ((old.Permissions | rights) == old.Permissions)
                return Errno.Ok;
            Volatile.Write(ref slot, DevicePte.Leaf(Aperture.System, old.Address, old.Permissions | rights).Value);
            _device.InvalidateTlb(Id, va, va + PageSize);
            return Errno.Ok;
        }
        if (old.IsValid)
        {
            // A different page is still mapped: an invalidation should have removed it first. Replace it safely.
            _kernel.Warn($"{this}: fault handler found 0x{va:x} mapped to another page; replacing it.");
            Volatile.Write(ref slot, DevicePte.Invalid.Value);
            _device.InvalidateTlb(Id, va, va + PageSize);
            if (old.Aperture == Aperture.System)
                _device.Pci.DmaUnmapPage(old.Address);
        }
        var err = _device.Pci.DmaMapPage(pfn, out bus);
        if (err != Errno.Ok)
            return err;
        Volatile.Write(ref slot, DevicePte.Leaf(Aperture.System, bus, rights).Value);
        Interlocked.Increment(ref _pagesMapped);
        return Errno.Ok;
    }
}
