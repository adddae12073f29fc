using System.Buffers.Binary;
using HmmEmu.Annotations;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Collections;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;
using HmmEmu.Testing.Coherence;

namespace HmmEmu.Coherence.Tests.Bugs;

/// <summary>
/// One open mutant mirror (struct dmirror with a TLB): a device page table of virtual page number to entry, an
/// 8-slot direct-mapped device TLB in front of it that every successful lookup fills, and an interval notifier over
/// the whole address space whose callback erases the table and flushes the TLB. Device reads and writes fault
/// missing entries in with <see cref="Hmm.RangeFault"/>; device atomics use <see cref="Mm.MakeDeviceExclusive"/>.
/// The <see cref="MirrorBug"/> of its device is switched on at the place named in that bug's documentation.
/// </summary>
/// <remarks>
/// Locking: <see cref="_mutex"/> guards <see cref="_pt"/> and <see cref="_tlb"/>. The invalidate callback takes it
/// (or tries to, for a non-blockable range), so nothing that may reclaim or wait on an invalidation runs under it:
/// <c>RangeFault</c>, <c>MakeDeviceExclusive</c> and building the entries come first, and entries are stored with
/// <see cref="Gfp.Atomic"/>. Lock order: mmap lock, page lock, then the mutex.
/// </remarks>
internal sealed class MutantMirrorContext : IMirrorContext, IMmuIntervalNotifierOps
{
    private const int ChunkPages = 64;
    private const int TlbSlots = 8;                       // direct-mapped: slot = vpn % TlbSlots
    private const ulong PageSize = PhysicalMemory.PageSize;
    private const int PageShift = PhysicalMemory.PageShift;
    private const ulong RangeTimeoutNs = 1_000_000_000;   // HMM_RANGE_DEFAULT_TIMEOUT: 1000 ms
    private const int MaxRoundsWithoutProgress = 16;      // device fault rounds that copy nothing before EBUSY
    private const int MaxAtomicAttempts = 16;             // exclusive grants revoked before an atomic completes

    // Device page-table (and TLB) entries: the pfn as the CPU names it, present, writable, device-exclusive.
    private const ulong EntryPresent = 1UL << 63;
    private const ulong EntryWrite = 1UL << 62;
    private const ulong EntryAtomic = 1UL << 61;
    private const ulong EntryPfnMask = (1UL << 52) - 1;

    private readonly MutantMirrorDevice _device;
    private readonly HostKernel _kernel;
    private readonly Mm _mm;
    private readonly MirrorBug _bug;
    private readonly MmuIntervalNotifier _notifier;

    [NotifierUpdateLock]
    private readonly KMutex _mutex;

    private readonly XArray<ulong> _pt;                   // only use under _mutex
    private readonly TlbSlot[] _tlb = new TlbSlot[TlbSlots];   // only use under _mutex
    private int _closed;

    internal MutantMirrorContext(MutantMirrorDevice device, Mm mm)
    {
        _device = device;
        _kernel = device.Kernel;
        _mm = mm;
        _bug = device.Bug;
        _mutex = new KMutex(_kernel, "mutant_mirror.mutex");
        _pt = new XArray<ulong>(_kernel);
        _notifier = new MmuIntervalNotifier(this);
    }

    /// <inheritdoc />
    public MmuIntervalNotifier? Notifier => Volatile.Read(ref _closed) == 0 ? _notifier : null;

    /// <summary>Inserts the notifier over the whole address space (the second half of open). May sleep.</summary>
    internal Errno Register() => _notifier.Insert(_mm, 0, ulong.MaxValue & ~(PageSize - 1));

    /// <inheritdoc />
    public Errno Read(ulong addr, Span<byte> destination) => Transfer(addr, destination, default, write: false);

    /// <inheritdoc />
    public Errno Write(ulong addr, ReadOnlySpan<byte> source) => Transfer(addr, default, source, write: true);

    /// <summary>Not supported: this driver has no device memory.</summary>
    public Errno MigrateToDevice(ulong addr, ulong npages) => Errno.EOPNOTSUPP;

    /// <summary>Not supported: this driver has no device memory.</summary>
    public Errno MigrateToSystem(ulong addr, ulong npages) => Errno.EOPNOTSUPP;

    /// <summary>
    /// dmirror_exclusive: takes every page device-exclusive and maps it atomic, then reads the range back through the
    /// device page table without faulting (ENOENT if the CPU took a page back meanwhile). May sleep.
    /// </summary>
    public Errno Exclusive(ulong addr, ulong npages, Span<byte> destination)
    {
        if (Volatile.Read(ref _closed) != 0)
            return Errno.EBADF;
        if (!IsValidRange(addr, npages) || (ulong)destination.Length < (npages << PageShift))
            return Errno.EINVAL;
        ulong end = addr + (npages << PageShift);
        var err = MakeExclusive(addr, end);
        if (err != Errno.Ok)
            return err;
        ulong copied = 0;
        using (_mutex.Scoped())
            return CopyPages(addr, end, destination, default, write: false, ref copied);
    }

    /// <summary>
    /// The device atomic: a 64-bit add at <paramref name="addr"/> through a device-exclusive entry, taking the page
    /// exclusive first if the entry is missing; retried (up to a bound, then EBUSY) while the CPU keeps taking the
    /// page back. EINVAL if not 8-byte aligned. May sleep.
    /// </summary>
    public Errno AtomicAdd(ulong addr, long value, out long? previous)
    {
        previous = null;
        if (Volatile.Read(ref _closed) != 0)
            return Errno.EBADF;
        if ((addr & 7) != 0 || addr >= Mm.TaskSize)
            return Errno.EINVAL;
        ulong page = addr & ~(PageSize - 1);
        // BUG (AtomicWithoutExclusive): any writable mapping will do, and the CPU keeps access to the page.
        bool exclusive = _bug != MirrorBug.AtomicWithoutExclusive;
        ulong need = EntryPresent | (exclusive ? EntryAtomic : EntryWrite);
        for (int attempt = 0; attempt < MaxAtomicAttempts; attempt++)
        {
            using (_mutex.Scoped())
            {
                // Re-checked under the mutex: the CPU may have taken the page back since it was made exclusive.
                ulong entry = Translate(page >> PageShift);
                if ((entry & need) == need)
                {
                    previous = DeviceAtomicAdd(entry & EntryPfnMask, (int)(addr & (PageSize - 1)), value);
                    return Errno.Ok;
                }
            }
            var err = exclusive ? MakeExclusive(page, page + PageSize) : Fault(page, page + PageSize, write: true);
            if (err != Errno.Ok)
                return err;
        }
        return Errno.EBUSY;
    }

    /// <summary>close(2): removes the notifier and drops the device page table and TLB. May sleep.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
            throw new InvalidOperationException($"{this} closed twice.");
        // BUG (CloseKeepsNotifier): the subscription stays, and its callbacks keep running on the dropped state.
        if (_bug != MirrorBug.CloseKeepsNotifier)
            _notifier.Remove();
        using (_mutex.Scoped())
        {
            _pt.EraseRange(0, XArray<ulong>.MaxIndex);
            FlushTlb(0, XArray<ulong>.MaxIndex);
        }
    }

    /// <summary>
    /// The page-table entries (Source "pt") and valid TLB slots (Source "tlb"), pfns as the CPU names them. Takes no
    /// lock: call it only at quiescence, when no thread uses this context.
    /// </summary>
    public IReadOnlyList<DeviceTranslation> Translations()
    {
        var list = new List<DeviceTranslation>();
        _pt.ForEach(0, XArray<ulong>.MaxIndex, (vpn, e) =>
        {
            if ((e & EntryPresent) != 0)
                list.Add(ToTranslation(vpn, e, "pt"));
        });
        foreach (var slot in _tlb)
        {
            if (slot.IsValid)
                list.Add(ToTranslation(slot.Vpn, slot.Entry, "tlb"));
        }
        return list;
    }

    /// <summary>dmirror_interval_invalidate: erases the range from the page table and flushes it from the TLB. May sleep only if the range is blockable.</summary>
    [InvalidateCallback]
    public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
    {
        // BUG (IgnoreMigrateEventsOfOthers): the owner test is dropped, so another device's migration is skipped too.
        bool ownMigration = range.Event == NotifierEvent.Migrate
            && (_bug == MirrorBug.IgnoreMigrateEventsOfOthers || ReferenceEquals(range.Owner, _device));
        if (!LockForInvalidate(range))
            return false;
        try
        {
            // Published even for our own migration, so that a fault racing it retries (as MirrorFile does).
            // BUG (ForgetSetSeq): never published.
            if (_bug != MirrorBug.ForgetSetSeq)
                notifier.SetSeq(curSeq);
            if (ownMigration)
                return true;
            ulong first = range.Start >> PageShift;
            ulong last = Math.Min((range.End - 1) >> PageShift, XArray<ulong>.MaxIndex);
            // BUG (EraseFirstPageOnly): the rest of the range keeps its entries.
            if (_bug == MirrorBug.EraseFirstPageOnly)
                last = first;
            ErasePageTable(first, last);
            // BUG (FlushTableNotTlb): the TLB keeps translations the table no longer has.
            if (_bug != MirrorBug.FlushTableNotTlb)
                FlushTlb(first, last);
        }
        finally
        {
            _mutex.Unlock();
        }
        return true;
    }

    // dmirror_read / dmirror_write: copy page by page through the TLB and page table; on a missing (or, for writes,
    // read-only) entry fault from that page to the end and go again. EBUSY after rounds that copy nothing.
    private Errno Transfer(ulong addr, Span<byte> destination, ReadOnlySpan<byte> source, bool write)
    {
        if (Volatile.Read(ref _closed) != 0)
            return Errno.EBADF;
        int length = write ? source.Length : destination.Length;
        if (length % PhysicalMemory.PageSize != 0 || !IsValidRange(addr, (ulong)length >> PageShift))
            return Errno.EINVAL;
        ulong end = addr + (ulong)length;
        ulong copied = 0;
        int idleRounds = 0;
        while (true)
        {
            ulong before = copied;
            Errno err;
            using (_mutex.Scoped())
                err = CopyPages(addr + (copied << PageShift), end, destination, source, write, ref copied);
            if (err != Errno.ENOENT)
                return err;
            idleRounds = copied == before ? idleRounds + 1 : 0;
            if (idleRounds > MaxRoundsWithoutProgress)
                return Errno.EBUSY;
            err = Fault(addr + (copied << PageShift), end, write);
            if (err != Errno.Ok)
                return err;
        }
    }

    // dmirror_do_read / dmirror_do_write: the device's DMA through its TLB and page table, from page [start, end)
    // at buffer page `copied` on. ENOENT at the first page without a usable entry. Caller holds _mutex.
    private Errno CopyPages(ulong start, ulong end, Span<byte> destination, ReadOnlySpan<byte> source, bool write, ref ulong copied)
    {
        _mutex.AssertHeld("MutantMirrorContext.CopyPages");
        var mem = _kernel.Memory;
        for (ulong vpn = start >> PageShift; vpn < end >> PageShift; vpn++)
        {
            ulong entry = Translate(vpn);
            if ((entry & EntryPresent) == 0 || (write && (entry & EntryWrite) == 0))
                return Errno.ENOENT;
            var page = mem.PageBytes(entry & EntryPfnMask);
            int offset = (int)(copied << PageShift);
            if (write)
                source.Slice(offset, PhysicalMemory.PageSize).CopyTo(page);
            else
                page.CopyTo(destination.Slice(offset, PhysicalMemory.PageSize));
            copied++;
        }
        return Errno.Ok;
    }

    // dmirror_fault: faults [start, end) in 64-page chunks and commits each. Holds a user reference on the mm.
    private Errno Fault(ulong start, ulong end, bool write)
    {
        if (!_mm.MmGetNotZero())
            return Errno.EFAULT;
        try
        {
            var err = Errno.Ok;
            for (ulong addr = start; addr < end && err == Errno.Ok;)
            {
                ulong next = Math.Min(addr + ChunkPages * PageSize, end);
                var range = new HmmRange(_notifier, addr, next)
                {
                    DefaultFlags = HmmPfn.ReqFault | (write ? HmmPfn.ReqWrite : 0),
                    DevPrivateOwner = _device,
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

    // The read_begin / range_fault / lock / read_retry / commit loop of dmirror_range_fault, bounded by
    // HMM_RANGE_DEFAULT_TIMEOUT.
    private Errno RangeFaultAndCommit(HmmRange range)
    {
        var entries = new ulong[range.PageCount];
        ulong deadline = _kernel.Clock.Now + RangeTimeoutNs;
        while (true)
        {
            if (_kernel.Clock.Now > deadline)
                return Errno.EBUSY;
            range.NotifierSeq = _notifier.ReadBegin();
            Errno err;
            using (_mm.MmapReadLock())
                err = Hmm.RangeFault(range);
            if (err == Errno.EBUSY)
                continue;
            if (err != Errno.Ok)
                return err;
            if (_bug == MirrorBug.CommitAfterUnlock)
            {
                // BUG (CommitAfterUnlock): checked early, then the lock is dropped while the entries are built; an
                // invalidation that runs meanwhile is undone by the commit.
                bool stale;
                using (_mutex.Scoped())
                    stale = _notifier.ReadRetry(range.NotifierSeq);
                if (stale)
                    continue;
                err = BuildEntries(range, entries);
                if (err != Errno.Ok)
                    return err;
                using (_mutex.Scoped())
                    return Commit(range.Start, entries);
            }
            err = BuildEntries(range, entries);
            if (err != Errno.Ok)
                return err;
            _mutex.Lock();
            try
            {
                // BUG (SkipReadRetry): commits whatever the fault saw, stale or not.
                if (_bug != MirrorBug.SkipReadRetry && _notifier.ReadRetry(range.NotifierSeq))
                    continue;                     // an invalidation raced us: fault again
                return Commit(range.Start, entries);
            }
            finally
            {
                _mutex.Unlock();
            }
        }
    }

    // dmirror_do_fault, first half: the device entry of every faulted page, writable only where HMM reported
    // HMM_PFN_WRITE. EFAULT for an entry without VALID, or without WRITE for a write fault. Costs the device's
    // page-table write time (PteVisitNs a page), so it runs outside the mutex. May sleep.
    private Errno BuildEntries(HmmRange range, ulong[] entries)
    {
        var pfns = range.HmmPfns;
        for (int i = 0; i < range.PageCount; i++)
        {
            ulong e = pfns[i];
            if ((e & HmmPfn.Error) != 0 || (e & HmmPfn.Valid) == 0)
            {
                _kernel.Warn($"{this}: RangeFault returned entry 0x{e:x} without VALID for a faulted page.");
                return Errno.EFAULT;
            }
            ulong entry = EntryPresent | HmmPfn.ToPfn(e);
            // BUG (IgnoreWritePermission): writable whatever the CPU allows.
            if ((e & HmmPfn.Write) != 0 || _bug == MirrorBug.IgnoreWritePermission)
                entry |= EntryWrite;
            else if ((range.DefaultFlags & HmmPfn.ReqWrite) != 0)
                return Errno.EFAULT;
            entries[i] = entry;
        }
        _kernel.Scheduler.Charge(_kernel.Timing.PteVisitNs * (ulong)range.PageCount);
        return Errno.Ok;
    }

    // dmirror_do_fault, second half: stores the entries of the pages from `start` on. Caller holds _mutex and has
    // checked ReadRetry under it since the fault.
    [DeviceMapCommit]
    private Errno Commit(ulong start, ulong[] entries)
    {
        _mutex.AssertHeld("MutantMirrorContext.Commit");
        for (int i = 0; i < entries.Length; i++)
        {
            var err = StoreEntry((start >> PageShift) + (ulong)i, entries[i]);
            if (err != Errno.Ok)
                return err;
        }
        return Errno.Ok;
    }

    // The exclusive half of dmirror_exclusive: make_device_exclusive page by page (under the mmap read lock), map
    // each page atomic while the page lock still keeps the CPU from taking it back, then unlock and put it.
    private Errno MakeExclusive(ulong start, ulong end)
    {
        if (!_mm.MmGetNotZero())
            return Errno.EINVAL;
        var mem = _kernel.Memory;
        try
        {
            using (_mm.MmapReadLock())
            {
                for (ulong addr = start; addr < end; addr += PageSize)
                {
                    var err = _mm.MakeDeviceExclusive(addr, null, out ulong pfn);
                    if (err != Errno.Ok)
                        return err;
                    using (_mutex.Scoped())
                        err = StoreEntry(addr >> PageShift, EntryPresent | EntryAtomic | pfn);
                    mem.UnlockPage(pfn);
                    mem.PutPage(pfn);
                    if (err != Errno.Ok)
                        return err;
                }
            }
            return Errno.Ok;
        }
        finally
        {
            _mm.MmPut();
        }
    }

    // The device's atomic add on the word at `offset` of frame `pfn`: a read and a write, two bus transactions with
    // a scheduling point between them. Only device exclusivity keeps the CPU out of that window: a CPU access must
    // first take the page back, which invalidates, and the callback waits for _mutex. Caller holds _mutex.
    private long DeviceAtomicAdd(ulong pfn, int offset, long value)
    {
        _mutex.AssertHeld("MutantMirrorContext.DeviceAtomicAdd");
        var mem = _kernel.Memory;
        long old = BinaryPrimitives.ReadInt64LittleEndian(mem.PageBytes(pfn).Slice(offset, sizeof(long)));
        _kernel.Scheduler.Yield();
        BinaryPrimitives.WriteInt64LittleEndian(mem.PageBytes(pfn).Slice(offset, sizeof(long)), unchecked(old + value));
        return old;
    }

    // The device's translation: a TLB hit, else a page-table walk whose present result fills the slot. Returns 0 for
    // no entry. Caller holds _mutex.
    private ulong Translate(ulong vpn)
    {
        ref var slot = ref _tlb[(int)(vpn % TlbSlots)];
        if (slot.IsValid && slot.Vpn == vpn)
            return slot.Entry;
        ulong entry = _pt.Load(vpn);
        if ((entry & EntryPresent) != 0)
            slot = new TlbSlot(vpn, entry);
        return entry;
    }

    // Writes one page-table entry and drops the TLB's copy of the old one (the device walks again). Caller holds _mutex.
    private Errno StoreEntry(ulong vpn, ulong entry)
    {
        _mutex.AssertHeld("MutantMirrorContext.StoreEntry");
        var err = _pt.Store(vpn, entry, Gfp.Atomic);
        FlushTlb(vpn, vpn);
        return err;
    }

    // Caller holds _mutex.
    [DeviceZap]
    private void ErasePageTable(ulong first, ulong last)
    {
        _mutex.AssertHeld("MutantMirrorContext.ErasePageTable");
        _pt.EraseRange(first, last);
    }

    // Invalidates the TLB slots of pages [first, last]; synchronous, so the device no longer uses them on return.
    // Caller holds _mutex.
    [TlbFlush]
    private void FlushTlb(ulong first, ulong last)
    {
        _mutex.AssertHeld("MutantMirrorContext.FlushTlb");
        for (int i = 0; i < _tlb.Length; i++)
        {
            if (_tlb[i].IsValid && _tlb[i].Vpn >= first && _tlb[i].Vpn <= last)
                _tlb[i] = default;
        }
    }

    // Takes the mutex in the invalidate callback: may sleep only if the range is blockable. Returns false if it
    // would have to sleep in a non-blockable one.
    [AcquiresOnSuccess(nameof(_mutex))]
    private bool LockForInvalidate(in MmuNotifierRange range)
    {
        // BUG (NonBlockableWaits): mutex_lock even where the callback must not sleep.
        if (range.Blockable || _bug == MirrorBug.NonBlockableWaits)
        {
            _mutex.Lock();
            return true;
        }
        return _mutex.TryLock();
    }

    private static DeviceTranslation ToTranslation(ulong vpn, ulong entry, string source) =>
        new(vpn << PageShift, entry & EntryPfnMask, (entry & EntryWrite) != 0, (entry & EntryAtomic) != 0, source);

    private static bool IsValidRange(ulong addr, ulong npages) =>
        (addr & (PageSize - 1)) == 0 && npages != 0 && npages <= (Mm.TaskSize >> PageShift) && addr + (npages << PageShift) <= Mm.TaskSize;

    /// <inheritdoc />
    public override string ToString() => $"{_device} context (mm {_mm.Id})";

    /// <summary>One TLB slot: the page it translates and the page-table entry it caches (invalid when not present).</summary>
    private readonly record struct TlbSlot(ulong Vpn, ulong Entry)
    {
        public bool IsValid => (Entry & EntryPresent) != 0;
    }
}
