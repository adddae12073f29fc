using HmmEmu.Annotations;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Collections;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Mirror;

/// <summary>
/// An open mirror (struct dmirror): a device page table that maps virtual page numbers of the opener's address
/// space to the pages HMM reported, kept coherent by an interval notifier over the whole address space. Device
/// reads and writes go through this table and fault missing entries in with <see cref="Hmm.RangeFault"/>.
/// </summary>
/// <remarks>
/// Locking: <see cref="_mutex"/> guards <see cref="_pt"/>. The invalidate callback takes it (or tries to, for a
/// non-blockable range), so nothing that may sleep on reclaim or wait on an invalidation runs under it: entries
/// are stored with <see cref="Gfp.Atomic"/>, and <c>RangeFault</c> runs before the mutex is taken.
/// </remarks>
public sealed class MirrorFile : IMmuIntervalNotifierOps
{
    private const int ChunkPages = 64;
    private const int MigrateChunkPages = 512;   // PTRS_PER_PTE: a 2 MiB-aligned chunk can move as one huge page
    private const ulong PageSize = PhysicalMemory.PageSize;
    private const int PageShift = PhysicalMemory.PageShift;
    private const ulong RangeTimeoutNs = 1_000_000_000;   // HMM_RANGE_DEFAULT_TIMEOUT: 1000 ms

    // Device page-table entries: the pfn, whether the device may write, present bit (pfn 0 is the zero page).
    private const ulong EntryPresent = 1UL << 63;
    private const ulong EntryWrite = 1UL << 62;
    private const ulong EntryAtomic = 1UL << 61;
    private const ulong EntryPfnMask = (1UL << 52) - 1;

    private readonly HostKernel _kernel;
    private readonly KMutex _mutex;
    private readonly XArray<ulong> _pt;
    private readonly Mm _mm;
    private int _closed;

    internal MirrorFile(MirrorDevice device, Mm mm)
    {
        Device = device;
        _kernel = device.Kernel;
        _mm = mm;
        _mutex = new KMutex(_kernel, "dmirror.mutex");
        _pt = new XArray<ulong>(_kernel);
        Notifier = new MmuIntervalNotifier(this);
    }

    /// <summary>
    /// HMM_DMIRROR_FLAG_FAIL_ALLOC: one-shot; the next destination allocation of a migration (a device page on the way
    /// to the device, a system page on the way back) fails. For a 2 MiB page this forces the split fallback to 512
    /// small pages; for a small page the page is not migrated (to the device) or the migration fails with ENOMEM
    /// (back to system memory).
    /// </summary>
    public const ulong FlagFailAlloc = 1UL << 0;

    private ulong _flags;

    /// <summary>The flags set with <see cref="MirrorIoctl.Flags"/> (FAIL_ALLOC clears itself when it fires).</summary>
    public ulong Flags => Interlocked.Read(ref _flags);

    /// <summary>The device this file was opened on (the pgmap owner it reports as its own).</summary>
    [OwnerToken]
    public MirrorDevice Device { get; }

    /// <summary>The notifier that keeps the device page table coherent.</summary>
    public MmuIntervalNotifier Notifier { get; }

    /// <summary>How many pages the device page table maps. Takes the mutex. May sleep.</summary>
    public long MappedPages
    {
        get
        {
            using (_mutex.Scoped())
                return _pt.Count;
        }
    }

    /// <summary>
    /// The device page table, in address order (a debugfs-style view for checkers such as the coherence suite):
    /// each entry's virtual page address, the pfn it maps (a device-private pfn for migrated pages), and whether it
    /// allows writes and device atomics. Takes no lock: call it only while no thread uses this file.
    /// </summary>
    public IReadOnlyList<MirrorPageTableEntry> DumpPageTable()
    {
        var entries = new List<MirrorPageTableEntry>();
        _pt.ForEach(0, XArray<ulong>.MaxIndex, (vpn, e) =>
        {
            if ((e & EntryPresent) != 0)
                entries.Add(new MirrorPageTableEntry(vpn << PageShift, e & EntryPfnMask, (e & EntryWrite) != 0, (e & EntryAtomic) != 0));
        });
        return entries;
    }

    /// <summary>close(2): unregisters the notifier and drops the device page table. May sleep.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
            throw new InvalidOperationException($"{Device} file closed twice.");
        Notifier.Remove();
        Device.Closed(this);
        using (_mutex.Scoped())
            _pt.EraseRange(0, XArray<ulong>.MaxIndex);
    }

    /// <summary>Whether this file mirrors <paramref name="mm"/>.</summary>
    internal bool Mirrors(Mm mm) => ReferenceEquals(_mm, mm);

    /// <summary>
    /// ioctl(2). Checks the command (EINVAL for an unaligned address, zero or wrapping length, or an unknown
    /// request), runs it and fills <see cref="MirrorCommand.CPages"/> and <see cref="MirrorCommand.Faults"/>. On
    /// failure the command is left as passed. Must run on a process thread (the buffer is in its memory). May sleep.
    /// </summary>
    public Errno Ioctl(MirrorIoctl request, ref MirrorCommand cmd)
    {
        if (Volatile.Read(ref _closed) != 0)
            return Errno.EINVAL;
        if ((cmd.Addr & (PageSize - 1)) != 0)
            return Errno.EINVAL;
        if (cmd.NPages == 0 || cmd.NPages > (ulong.MaxValue >> PageShift) || cmd.Addr + (cmd.NPages << PageShift) <= cmd.Addr)
            return Errno.EINVAL;
        var work = cmd;
        work.CPages = 0;
        work.Faults = 0;
        var err = request switch
        {
            MirrorIoctl.Read => DeviceRead(ref work),
            MirrorIoctl.Write => DeviceWrite(ref work),
            MirrorIoctl.Snapshot => Snapshot(ref work),
            MirrorIoctl.MigrateToDevice => MigrateToDevice(ref work),
            MirrorIoctl.MigrateToSystem => MigrateToSystem(ref work),
            MirrorIoctl.Exclusive => Exclusive(ref work),
            MirrorIoctl.CheckExclusive => CheckExclusive(work),
            MirrorIoctl.Release => Device.EvictAll(),
            MirrorIoctl.Flags => SetFlags(work.NPages),
            _ => Errno.EINVAL,
        };
        if (err != Errno.Ok)
            return err;
        cmd = work;
        return Errno.Ok;
    }

    /// <summary>
    /// mmap(2) of the device file by the calling process (dmirror_fops_mmap): every page of the area is a fresh,
    /// zeroed kernel page inserted with vm_insert_page. Returns the address, or the errno (nothing stays mapped). May sleep.
    /// </summary>
    public Errno Mmap(ulong length, Prot prot, MapFlags flags, out ulong address)
    {
        var mm = _kernel.CurrentProcess?.Mm ?? throw new InvalidOperationException("mmap of a mirror file must be called from a process thread.");
        var mem = _kernel.Memory;
        return mm.MmapDevice(length, prot, flags, vma =>
        {
            for (ulong addr = vma.Start; addr < vma.End; addr += PageSize)
            {
                var err = mem.AllocPage(Gfp.Kernel | Gfp.Zero, out ulong pfn);
                if (err != Errno.Ok)
                    return err;
                err = mm.InsertPage(vma, addr, pfn);
                mem.PutPage(pfn);                      // the mapping holds its own reference now
                if (err != Errno.Ok)
                    return err;
            }
            return Errno.Ok;
        }, out address);
    }

    /// <summary>dmirror_interval_invalidate: drops the device's entries for the range. May sleep only if the range is blockable.</summary>
    public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
    {
        bool ownMigration = range.Event == NotifierEvent.Migrate && ReferenceEquals(range.Owner, Device);
        // Our own make_device_exclusive: the page stays with this device, and Exclusive() stores the atomic entry
        // itself; publishing the sequence here would make that store retry forever.
        if (range.Event == NotifierEvent.Exclusive && ReferenceEquals(range.Owner, Device))
            return true;
        if (!LockForInvalidate(_mutex, range))
            return false;
        try
        {
            // Publish the sequence even for our own migration, so that a fault racing it retries instead of
            // committing a page the migration is about to free; only the erase is skipped (the migration updates
            // the table itself).
            notifier.SetSeq(curSeq);
            if (ownMigration)
                return true;
            ulong last = range.End == ulong.MaxValue ? XArray<ulong>.MaxIndex : Math.Min(range.End >> PageShift, XArray<ulong>.MaxIndex);
            _pt.EraseRange(range.Start >> PageShift, last);
        }
        finally
        {
            _mutex.Unlock();
        }
        return true;
    }

    // dmirror_read: copy from the device page table, faulting missing pages in rounds; copy out only on success.
    private Errno DeviceRead(ref MirrorCommand cmd)
    {
        var bounce = new byte[(int)(cmd.NPages << PageShift)];
        var err = TransferWithFaults(ref cmd, bounce, write: false);
        if (err == Errno.Ok && _kernel.CurrentProcess!.Mm.CopyToUser(cmd.Ptr, bounce) != Errno.Ok)
            err = Errno.EFAULT;
        return err;
    }

    // dmirror_write: copy the caller's buffer in first, then write it through the device page table.
    private Errno DeviceWrite(ref MirrorCommand cmd)
    {
        var bounce = new byte[(int)(cmd.NPages << PageShift)];
        if (_kernel.CurrentProcess!.Mm.CopyFromUser(cmd.Ptr, bounce) != Errno.Ok)
            return Errno.EFAULT;
        return TransferWithFaults(ref cmd, bounce, write: true);
    }

    // The loop shared by read and write: try the whole range under the mutex; on a missing (or, for writes,
    // read-only) entry fault from that page to the end and count one fault round.
    private Errno TransferWithFaults(ref MirrorCommand cmd, byte[] bounce, bool write)
    {
        ulong start = cmd.Addr, end = cmd.Addr + (cmd.NPages << PageShift);
        ulong copied = 0;
        Errno err;
        while (true)
        {
            using (_mutex.Scoped())
                err = CopyPages(start, end, bounce, ref copied, write);
            if (err != Errno.ENOENT)
                break;
            start = cmd.Addr + (copied << PageShift);
            err = Fault(start, end, write);
            if (err != Errno.Ok)
                break;
            cmd.Faults++;
        }
        cmd.CPages = copied;
        return err;
    }

    // dmirror_do_read / dmirror_do_write: the device's DMA through its page table. Caller holds _mutex.
    private Errno CopyPages(ulong start, ulong end, byte[] bounce, ref ulong copied, bool write)
    {
        _mutex.AssertHeld("MirrorFile.CopyPages");
        var mem = _kernel.Memory;
        ulong offset = copied << PageShift;
        for (ulong vpn = start >> PageShift; vpn < end >> PageShift; vpn++)
        {
            ulong entry = _pt.Load(vpn);
            if ((entry & EntryPresent) == 0 || (write && (entry & EntryWrite) == 0))
                return Errno.ENOENT;
            var page = mem.PageBytes(Device.BackingPfn(entry & EntryPfnMask));
            var slice = bounce.AsSpan((int)offset, PhysicalMemory.PageSize);
            if (write)
                slice.CopyTo(page);
            else
                page.CopyTo(slice);
            offset += PageSize;
            copied++;
        }
        return Errno.Ok;
    }

    // dmirror_fault: faults [start, end) in 64-page chunks and commits each into the device page table.
    private Errno Fault(ulong start, ulong end, bool write)
    {
        // test_hmm returns 0 here, which makes its read/write loop spin forever once the opener has exited.
        if (!_mm.MmGetNotZero())
            return Errno.EFAULT;
        try
        {
            var err = Errno.Ok;
            for (ulong addr = start; addr < end && err == Errno.Ok;)
            {
                ulong next = Math.Min(addr + ChunkPages * PageSize, end);
                var range = new HmmRange(Notifier, addr, next)
                {
                    DefaultFlags = HmmPfn.ReqFault | (write ? HmmPfn.ReqWrite : 0),
                    DevPrivateOwner = Device,
                };
                err = RangeFaultAndCommit(range);
                addr = next;
            }
            return err;
        }
        finally
        {
            _mm.MmPut();
        }
    }

    // The read_begin / range_fault / lock / read_retry / commit loop of dmirror_range_fault.
    private Errno RangeFaultAndCommit(HmmRange range)
    {
        ulong deadline = _kernel.Clock.Now + RangeTimeoutNs;
        while (true)
        {
            if (_kernel.Clock.Now > deadline)
                return Errno.EBUSY;
            range.NotifierSeq = Notifier.ReadBegin();
            Errno err;
            using (_mm.MmapReadLock())
                err = Hmm.RangeFault(range);
            if (err == Errno.EBUSY)
                continue;
            if (err != Errno.Ok)
                return err;
            ulong cowPage;
            _mutex.Lock();
            try
            {
                if (Notifier.ReadRetry(range.NotifierSeq))
                    continue;                     // an invalidation raced us: fault again
                err = Commit(range, out cowPage);
                if (err != Errno.EAGAIN)
                    return err;
            }
            finally
            {
                _mutex.Unlock();
            }
            // A write to one of our own device pages that is read-only (shared copy-on-write since a fork): HMM
            // reports it as it is, without faulting. Bring it back to system memory, where the write fault breaks
            // the sharing, and fault again.
            var back = new MirrorCommand { Addr = cowPage, NPages = 1 };
            err = MigrateToSystem(ref back);
            if (err != Errno.Ok)
                return err;
        }
    }

    // dmirror_do_fault: stores the faulted pages. Caller holds _mutex and has checked ReadRetry. EAGAIN (with the
    // address in cowPage) when a write needs one of this device's own pages that is mapped read-only.
    private Errno Commit(HmmRange range, out ulong cowPage)
    {
        _mutex.AssertHeld("MirrorFile.Commit");
        cowPage = 0;
        var pfns = range.HmmPfns;
        for (int i = 0; i < range.PageCount; i++)
        {
            ulong e = pfns[i];
            if ((e & HmmPfn.Error) != 0 || (e & HmmPfn.Valid) == 0)
            {
                _kernel.Warn($"{Device}: RangeFault returned entry 0x{e:x} without VALID for a faulted page.");
                return Errno.EFAULT;
            }
            ulong entry = EntryPresent | HmmPfn.ToPfn(e);
            if ((e & HmmPfn.Write) != 0)
                entry |= EntryWrite;
            else if ((range.DefaultFlags & HmmPfn.ReqWrite) != 0)
            {
                if (!ReferenceEquals(DevicePagemap.Of(_kernel, HmmPfn.ToPfn(e))?.Owner, Device))
                    return Errno.EFAULT;
                cowPage = range.Start + ((ulong)i << PageShift);
                return Errno.EAGAIN;
            }
            var err = _pt.Store((range.Start >> PageShift) + (ulong)i, entry, Gfp.Atomic);
            if (err != Errno.Ok)
                return err;
        }
        return Errno.Ok;
    }

    // dmirror_exclusive: atomic access page by page, then read the range back through the device page table.
    private Errno Exclusive(ref MirrorCommand cmd)
    {
        ulong start = cmd.Addr, end = cmd.Addr + (cmd.NPages << PageShift);
        if (!_mm.MmGetNotZero())
            return Errno.EINVAL;
        var mem = _kernel.Memory;
        try
        {
            using (_mm.MmapReadLock())
            {
                for (ulong addr = start; addr < end; addr += PageSize)
                {
                    var err = _mm.MakeDeviceExclusive(addr, Device, out ulong pfn);
                    if (err != Errno.Ok)
                        return err;
                    // An invalidation racing us (a madvise, say) may already have run this file's callback, so the
                    // atomic entry is stored only if the page is still exclusive and nothing invalidated since the
                    // snapshot. The snapshot comes after make_device_exclusive: taking the page back from an earlier
                    // exclusive entry invalidates too, and would make every retry fail again. read_begin waits out
                    // an invalidation in progress, so one that began before the snapshot has finished its zap.
                    ulong seq = Notifier.ReadBegin();
                    bool stored;
                    using (_mutex.Scoped())
                    {
                        var cpu = _mm.GetPte(addr);
                        stored = cpu.IsDeviceExclusive && cpu.Pfn == pfn && !Notifier.ReadRetry(seq);
                        if (stored)
                            _pt.Store(addr >> PageShift, EntryPresent | EntryAtomic | pfn, Gfp.Atomic);
                    }
                    mem.UnlockPage(pfn);
                    mem.PutPage(pfn);
                    if (!stored)
                        addr -= PageSize;                 // raced an invalidation: take the page again
                }
            }
        }
        finally
        {
            _mm.MmPut();
        }
        return ReadBack(ref cmd);
    }

    // The read-back that MIGRATE_TO_DEV and EXCLUSIVE end with: the whole range through the device page table,
    // without faulting (ENOENT if any page is missing), copied to the caller's buffer.
    private Errno ReadBack(ref MirrorCommand cmd)
    {
        ulong start = cmd.Addr, end = cmd.Addr + (cmd.NPages << PageShift);
        var bounce = new byte[(int)(end - start)];
        ulong copied = 0;
        Errno err;
        using (_mutex.Scoped())
            err = CopyPages(start, end, bounce, ref copied, write: false);
        if (err != Errno.Ok)
            return err;
        if (_kernel.CurrentProcess!.Mm.CopyToUser(cmd.Ptr, bounce) != Errno.Ok)
            return Errno.EFAULT;
        cmd.CPages = copied;
        return Errno.Ok;
    }

    private Errno SetFlags(ulong flags)
    {
        Interlocked.Exchange(ref _flags, flags);
        return Errno.Ok;
    }

    /// <summary>Consumes a pending FAIL_ALLOC: true (and the flag cleared) if the caller's allocation must fail.</summary>
    internal bool TakeFailAlloc() => (Interlocked.And(ref _flags, ~FlagFailAlloc) & FlagFailAlloc) != 0;

    // dmirror_check_atomic: the CPU must have taken every page back (the invalidation erased the atomic entries).
    private Errno CheckExclusive(in MirrorCommand cmd)
    {
        ulong start = cmd.Addr >> PageShift, end = start + cmd.NPages;
        using (_mutex.Scoped())
        {
            for (ulong vpn = start; vpn < end; vpn++)
            {
                if ((_pt.Load(vpn) & EntryAtomic) != 0)
                    return Errno.EPERM;
            }
        }
        return Errno.Ok;
    }

    /// <summary>Drops the device's entries for <paramref name="pages"/> pages from <paramref name="addr"/> (they went back to system memory). May sleep.</summary>
    internal void ForgetPages(ulong addr, int pages = 1)
    {
        using (_mutex.Scoped())
        {
            for (ulong vpn = addr >> PageShift, end = vpn + (ulong)pages; vpn < end; vpn++)
                _pt.Erase(vpn);
        }
    }

    // dmirror_migrate_to_device: migrate each VMA chunk to device memory, map it on the device, then read the whole
    // range back through the device page table (ENOENT if any page is not there).
    private Errno MigrateToDevice(ref MirrorCommand cmd)
    {
        ulong start = cmd.Addr, end = cmd.Addr + (cmd.NPages << PageShift);
        if (!_mm.MmGetNotZero())
            return Errno.EINVAL;
        try
        {
            using (_mm.MmapReadLock())
            {
                for (ulong addr = start; addr < end;)
                {
                    var vma = _mm.VmaLookup(addr);
                    if (vma is null || (vma.Flags & VmFlags.Read) == 0)
                        return Errno.EINVAL;
                    ulong next = Math.Min(Math.Min(end, addr + MigrateChunkPages * PageSize), vma.End);
                    var args = new MigrateVma
                    {
                        Vma = vma, Start = addr, End = next, Src = new ulong[MigrateChunkPages], Dst = new ulong[MigrateChunkPages],
                        PgmapOwner = Device, Flags = MigrateSelect.System | MigrateSelect.Compound,
                    };
                    var err = Migrate.VmaSetup(args);
                    if (err != Errno.Ok)
                        return err;
                    AllocAndCopyToDevice(args, vma);
                    Migrate.VmaPages(args);
                    // The migration's own invalidations are over (VmaPages may invalidate too); anything that
                    // invalidates from here on (a racing madvise, say) must stop MapMigrated, or the device keeps an
                    // entry for a page that is gone. read_begin waits out one in progress, whose zap MapMigrated's
                    // check of the CPU entry then sees.
                    ulong seq = Notifier.ReadBegin();
                    MapMigrated(args, seq);
                    Migrate.VmaFinalize(args);
                    addr = next;
                }
            }
        }
        finally
        {
            _mm.MmPut();
        }
        return ReadBack(ref cmd);
    }

    // dmirror_migrate_alloc_and_copy: a device page per selected entry, filled from the source (or zeroed). A compound
    // entry gets a 2 MiB device page, or (allocation failed, or FAIL_ALLOC) 512 small ones; a small entry whose
    // allocation fails stays where it is.
    private void AllocAndCopyToDevice(MigrateVma args, Vma vma)
    {
        var mem = _kernel.Memory;
        for (ulong i = 0; i < args.NPages; i++)
        {
            ulong src = args.Src![i];
            if ((src & MigratePfn.Migrate) == 0)
                continue;
            ulong? spfn = MigratePfn.ToPfn(src);
            if (spfn is ulong sp && mem.IsDevicePage(sp))
            {
                _kernel.Warn($"{Device}: asked to migrate device page 0x{sp:x} to the device again.");
                continue;
            }
            bool huge = (src & MigratePfn.Compound) != 0;
            bool write = (src & MigratePfn.Write) != 0 || (spfn is null && (vma.Flags & VmFlags.Write) != 0);
            ulong flags = write ? MigratePfn.Write : 0;
            bool failAlloc = TakeFailAlloc();
            if (huge && !failAlloc && Device.AllocPage(this, huge: true, out ulong d0) == Errno.Ok)
            {
                for (ulong j = 0; j < MigratePfn.CompoundPages; j++)
                    FillDevicePage(d0 + j, spfn is ulong s ? s + j : null);
                args.Dst![i] = MigratePfn.From(d0) | MigratePfn.Compound | flags;
                i += MigratePfn.CompoundPages - 1;
                continue;
            }
            if (!huge)
            {
                if (!failAlloc && Device.AllocPage(this, huge: false, out ulong dpfn) == Errno.Ok)
                {
                    FillDevicePage(dpfn, spfn);
                    args.Dst![i] = MigratePfn.From(dpfn) | flags;
                }
                continue;
            }
            // The split fallback: 512 small device pages for the huge source (migrate_vma_pages splits it).
            ulong n = Math.Min(MigratePfn.CompoundPages, args.NPages - i);
            for (ulong j = 0; j < n; j++)
            {
                if (Device.AllocPage(this, huge: false, out ulong dpfn) != Errno.Ok)
                    break;
                FillDevicePage(dpfn, spfn is ulong s ? s + j : null);
                args.Dst![i + j] = MigratePfn.From(dpfn) | flags;
            }
            i += n - 1;
        }
    }

    // Copies a source page (or zeroes) into device page dpfn's memory.
    private void FillDevicePage(ulong dpfn, ulong? spfn)
    {
        var mem = _kernel.Memory;
        var backing = mem.PageBytes(Device.BackingPfn(dpfn));
        if (spfn is ulong s)
            mem.PageBytes(s).CopyTo(backing);
        else
            backing.Clear();
    }

    // dmirror_migrate_finalize_and_map: the migrated pages go into the device page table. An entry is stored only
    // while the CPU entry still belongs to this migration (a concurrent zap, e.g. madvise(DONTNEED) under the read
    // lock, may have removed it; finalize would then free the new page).
    private void MapMigrated(MigrateVma args, ulong seq)
    {
        using (_mutex.Scoped())
        {
            // The migration's own invalidation left this file's entries in place (see Invalidate): every page that
            // moved loses its old entry here, and gets the device page only if nothing invalidated meanwhile.
            bool raced = Notifier.ReadRetry(seq);
            for (ulong i = 0; i < args.NPages; i++)
            {
                if ((args.Src![i] & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(args.Dst![i]) is not ulong dpfn)
                    continue;
                ulong frames = (args.Dst[i] & MigratePfn.Compound) != 0 ? (ulong)MigratePfn.CompoundPages : 1;
                ulong? spfn = MigratePfn.ToPfn(args.Src[i]);
                for (ulong j = 0; j < frames; j++)
                {
                    ulong vpn = (args.Start >> PageShift) + i + j;
                    _pt.Erase(vpn);
                    var cpu = _mm.GetPte(args.Start + ((i + j) << PageShift));
                    bool ours = spfn is ulong s ? cpu.IsMigration && cpu.Pfn == s + j : cpu.Pfn == dpfn + j && !cpu.IsNone;
                    if (raced || !ours)
                        continue;                 // the device faults the page in later
                    ulong entry = EntryPresent | (dpfn + j) | ((args.Dst[i] & MigratePfn.Write) != 0 ? EntryWrite : 0);
                    _pt.Store(vpn, entry, Gfp.Atomic);
                }
                i += frames - 1;
            }
        }
    }

    // dmirror_migrate_to_system: bring this device's pages in the range back to system memory.
    private Errno MigrateToSystem(ref MirrorCommand cmd)
    {
        ulong start = cmd.Addr, end = cmd.Addr + (cmd.NPages << PageShift);
        if (!_mm.MmGetNotZero())
            return Errno.EINVAL;
        try
        {
            using (_mm.MmapReadLock())
            {
                for (ulong addr = start; addr < end;)
                {
                    var vma = _mm.VmaLookup(addr);
                    if (vma is null)
                        return Errno.EINVAL;
                    ulong next = Math.Min(Math.Min(end, addr + MigrateChunkPages * PageSize), vma.End);
                    var args = new MigrateVma
                    {
                        Vma = vma, Start = addr, End = next, Src = new ulong[MigrateChunkPages], Dst = new ulong[MigrateChunkPages],
                        PgmapOwner = Device,
                        Flags = (Device.IsCoherent ? MigrateSelect.DeviceCoherent : MigrateSelect.DevicePrivate) | MigrateSelect.Compound,
                    };
                    var err = Migrate.VmaSetup(args);
                    if (err != Errno.Ok)
                        return err;
                    err = Device.CopyToSystem(args, this);
                    if (err != Errno.Ok)
                    {
                        Migrate.VmaFinalize(args);
                        return err;
                    }
                    Migrate.VmaPages(args);
                    for (ulong i = 0; i < args.NPages; i++)
                    {
                        if ((args.Src[i] & (MigratePfn.Valid | MigratePfn.Migrate)) == (MigratePfn.Valid | MigratePfn.Migrate))
                            cmd.CPages++;
                    }
                    Migrate.VmaFinalize(args);
                    addr = next;
                }
            }
            return Errno.Ok;
        }
        finally
        {
            _mm.MmPut();
        }
    }

    // dmirror_snapshot: one byte per page, never faulting, in 64-page chunks.
    private Errno Snapshot(ref MirrorCommand cmd)
    {
        if (!_mm.MmGetNotZero())
            return Errno.EINVAL;
        try
        {
            ulong start = cmd.Addr, end = cmd.Addr + (cmd.NPages << PageShift);
            var perm = new byte[ChunkPages];
            ulong uptr = cmd.Ptr;
            for (ulong addr = start; addr < end;)
            {
                ulong next = Math.Min(addr + ChunkPages * PageSize, end);
                var err = SnapshotRange(addr, next, perm);
                if (err != Errno.Ok)
                    return err;
                int n = (int)((next - addr) >> PageShift);
                if (_kernel.CurrentProcess!.Mm.CopyToUser(uptr, perm.AsSpan(0, n)) != Errno.Ok)
                    return Errno.EFAULT;
                cmd.CPages += (ulong)n;
                uptr += (ulong)n;
                addr = next;
            }
            return Errno.Ok;
        }
        finally
        {
            _mm.MmPut();
        }
    }

    // dmirror_range_snapshot: a temporary notifier over the chunk, then the usual retry loop.
    private Errno SnapshotRange(ulong start, ulong end, byte[] perm)
    {
        var ops = new SnapshotNotifierOps(_mutex);
        var notifier = new MmuIntervalNotifier(ops);
        var err = notifier.Insert(_mm, start, end - start);
        if (err != Errno.Ok)
            return err;
        try
        {
            var range = new HmmRange(notifier, start, end) { DevPrivateOwner = Device };
            ulong deadline = _kernel.Clock.Now + RangeTimeoutNs;
            while (true)
            {
                if (_kernel.Clock.Now > deadline)
                    return Errno.EBUSY;
                range.NotifierSeq = notifier.ReadBegin();
                using (_mm.MmapReadLock())
                    err = Hmm.RangeFault(range);
                if (err == Errno.EBUSY)
                    continue;
                if (err != Errno.Ok)
                    return err;
                using (_mutex.Scoped())
                {
                    if (notifier.ReadRetry(range.NotifierSeq))
                        continue;
                    for (int i = 0; i < range.PageCount; i++)
                        perm[i] = MakeEntry(range.HmmPfns[i]);
                    return Errno.Ok;
                }
            }
        }
        finally
        {
            notifier.Remove();
        }
    }

    // Takes the mutex in an invalidate callback: may sleep only if the range is blockable. Returns false if it
    // would have to sleep in a non-blockable one.
    [AcquiresOnSuccess(nameof(mutex))]
    private static bool LockForInvalidate(KMutex mutex, in MmuNotifierRange range)
    {
        if (range.Blockable)
        {
            mutex.Lock();
            return true;
        }
        return mutex.TryLock();
    }

    // dmirror_mkentry.
    private byte MakeEntry(ulong e)
    {
        if ((e & HmmPfn.Error) != 0)
            return SnapshotProt.Error;
        if ((e & HmmPfn.Valid) == 0)
            return SnapshotProt.None;
        ulong pfn = HmmPfn.ToPfn(e);
        byte b = DevicePagemap.Of(_kernel, pfn) switch
        {
            { Type: MemoryType.DevicePrivate } p => ReferenceEquals(p.Owner, Device) ? SnapshotProt.DevPrivateLocal : SnapshotProt.DevPrivateRemote,
            { Type: MemoryType.DeviceCoherent } p => ReferenceEquals(p.Owner, Device) ? SnapshotProt.DevCoherentLocal : SnapshotProt.DevCoherentRemote,
            _ => pfn == PhysicalMemory.ZeroPfn ? SnapshotProt.Zero : SnapshotProt.None,
        };
        b |= (e & HmmPfn.Write) != 0 ? SnapshotProt.Write : SnapshotProt.Read;
        int order = HmmPfn.MapOrder(e);
        if (order == 9)
            b |= SnapshotProt.Pmd;
        else if (order == 18)
            b |= SnapshotProt.Pud;
        return b;
    }

    /// <summary>The temporary snapshot notifier's callback (dmirror_snapshot_invalidate): only publishes the sequence.</summary>
    private sealed class SnapshotNotifierOps(KMutex mutex) : IMmuIntervalNotifierOps
    {
        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
        {
            if (!LockForInvalidate(mutex, range))
                return false;
            notifier.SetSeq(curSeq);
            mutex.Unlock();
            return true;
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{Device} file (mm {_mm.Id})";
}
