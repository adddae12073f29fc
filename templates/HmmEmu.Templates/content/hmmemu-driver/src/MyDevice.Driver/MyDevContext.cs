using HmmEmu.Annotations;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Collections;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace MyDevice.Driver;

/// <summary>
/// One open device: the mirror of the opener's address space (struct dmirror of lib/test_hmm.c). A device page table
/// of virtual page number to DMA-mapped bus address, filled by <see cref="Hmm.RangeFault"/> and kept coherent by one
/// interval notifier over the whole address space, whose callback zaps the entries, invalidates the device's TLB and
/// only then drops the DMA mappings.
/// </summary>
/// <remarks>
/// Locking: <see cref="_mutex"/> guards <see cref="_pt"/> and <see cref="_zapped"/>. The invalidate callback takes it
/// (or tries to, for a non-blockable range), so nothing that may reclaim or wait for an invalidation runs under it:
/// <c>RangeFault</c> runs before it is taken and entries are stored with <see cref="Gfp.Atomic"/>. Lock order: mmap
/// lock, then the mutex, then the device's TLB lock.
/// </remarks>
public sealed class MyDevContext : IMmuIntervalNotifierOps
{
    private const ulong PageSize = PhysicalMemory.PageSize;
    private const int PageShift = PhysicalMemory.PageShift;
    private const ulong ChunkPages = 64;                  // pages faulted per RangeFault
    private const ulong RangeTimeoutNs = 1_000_000_000;   // HMM_RANGE_DEFAULT_TIMEOUT: 1000 ms of virtual time
    private const int MaxRoundsWithoutProgress = 16;      // transfer rounds that copy nothing before EBUSY

    // Device page-table entries: present, writable, and the page's bus address (from DmaMapPage).
    private const ulong EntryPresent = 1UL << 63;
    private const ulong EntryWrite = 1UL << 62;
    private const ulong EntryBusMask = ((1UL << 52) - 1) & ~(PageSize - 1);

    private readonly MyDevDevice _device;
    private readonly HostKernel _kernel;
    private readonly Mm _mm;
    private readonly MmuIntervalNotifier _notifier;

    [NotifierUpdateLock]
    private readonly KMutex _mutex;

    private readonly XArray<ulong> _pt;                   // only use under _mutex
    private readonly List<ulong> _zapped = [];            // only use under _mutex: bus addresses to unmap after the TLB flush
    private int _closed;

    internal MyDevContext(MyDevDevice device, Mm mm)
    {
        _device = device;
        _kernel = device.Kernel;
        _mm = mm;
        _mutex = new KMutex(_kernel, "mydev.mutex");
        _pt = new XArray<ulong>(_kernel);
        _notifier = new MmuIntervalNotifier(this);
    }

    /// <summary>The notifier that keeps this mirror coherent (null once closed).</summary>
    public MmuIntervalNotifier? Notifier => Volatile.Read(ref _closed) == 0 ? _notifier : null;

    /// <summary>Inserts the notifier over the whole address space (the second half of open). May sleep.</summary>
    internal Errno Register() => _notifier.Insert(_mm, 0, ulong.MaxValue & ~(PageSize - 1));

    /// <summary>
    /// Device read of <c>destination.Length / 4096</c> pages at <paramref name="addr"/> through the device page table,
    /// faulting missing entries in. EINVAL for a bad range, EFAULT for an unmapped page. May sleep.
    /// </summary>
    public Errno Read(ulong addr, Span<byte> destination) => Transfer(addr, destination, default, write: false);

    /// <summary>
    /// Device write of <c>source.Length / 4096</c> pages at <paramref name="addr"/> through the device page table,
    /// faulting missing or read-only entries in for writing. EPERM for a read-only mapping. May sleep.
    /// </summary>
    public Errno Write(ulong addr, ReadOnlySpan<byte> source) => Transfer(addr, default, source, write: true);

    /// <summary>close(2): removes the notifier, then drops the device page table and its DMA mappings. May sleep.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
            throw new InvalidOperationException($"{this} closed twice.");
        _notifier.Remove();
        _mutex.Lock();
        try
        {
            DropEntries(0, XArray<ulong>.MaxIndex);
        }
        finally
        {
            _mutex.Unlock();
        }
    }

    /// <summary>Every translation the device page table holds. Takes no lock: call it only when no thread uses this mirror.</summary>
    public IReadOnlyList<MyDevMapping> Mappings()
    {
        var list = new List<MyDevMapping>();
        _pt.ForEach(0, XArray<ulong>.MaxIndex, (vpn, e) =>
        {
            if ((e & EntryPresent) != 0)
                list.Add(new MyDevMapping(vpn << PageShift, (e & EntryBusMask) >> PageShift, (e & EntryWrite) != 0));
        });
        return list;
    }

    /// <summary>
    /// Drops the device's translations of the range before the CPU changes it: set_seq, zap the entries, invalidate
    /// the device TLB and wait, then unmap the pages for DMA. May sleep only if the range is blockable.
    /// </summary>
    [InvalidateCallback]
    public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
    {
        ArgumentNullException.ThrowIfNull(notifier);
        if (!range.Blockable)
        {
            if (!_mutex.TryLock())
                return false;                     // the OOM reaper retries later; changing nothing is allowed
        }
        else
        {
            _mutex.Lock();
        }
        try
        {
            notifier.SetSeq(curSeq);
            ulong first = range.Start >> PageShift;
            ulong last = Math.Min((range.End - 1) >> PageShift, XArray<ulong>.MaxIndex);
            DropEntries(first, last);
        }
        finally
        {
            _mutex.Unlock();
        }
        return true;
    }

    // Why this order: the device may be using a translation until its TLB invalidation completes, so the entries go
    // first (no new walk finds them), then the TLB (no cached copy is used), and only then may the pages lose their
    // DMA mappings and so their references (the CPU may free and reuse them). Caller holds _mutex.
    private void DropEntries(ulong first, ulong last)
    {
        _mutex.AssertHeld("MyDevContext.DropEntries");
        ZapEntries(first, last, out ulong lo, out ulong hi);
        if (_zapped.Count == 0)
            return;
        _device.InvalidateTlb(lo << PageShift, (hi + 1) << PageShift);
        UnmapZapped();
    }

    // Removes the entries of pages [first, last] from the device page table and keeps their bus addresses in _zapped;
    // lo and hi are the first and last page that had one. Caller holds _mutex.
    [DeviceZap]
    private void ZapEntries(ulong first, ulong last, out ulong lo, out ulong hi)
    {
        _mutex.AssertHeld("MyDevContext.ZapEntries");
        ulong min = ulong.MaxValue, max = 0;
        _pt.EraseRange(first, last, (vpn, e) =>
        {
            if ((e & EntryPresent) == 0)
                return;
            _zapped.Add(e & EntryBusMask);
            min = Math.Min(min, vpn);
            max = Math.Max(max, vpn);
        });
        lo = min;
        hi = max;
    }

    // Drops the DMA mappings (and page references) of the zapped entries. Caller holds _mutex, after the TLB flush.
    [DmaUnmap]
    private void UnmapZapped()
    {
        foreach (ulong bus in _zapped)
            _device.Pci.DmaUnmapPage(bus);
        _zapped.Clear();
    }

    // dmirror_read / dmirror_write: copy page by page through the device page table; on a missing (or, for writes,
    // read-only) entry fault from that page to the end and go again. EBUSY after rounds that copy nothing.
    private Errno Transfer(ulong addr, Span<byte> destination, ReadOnlySpan<byte> source, bool write)
    {
        if (Volatile.Read(ref _closed) != 0)
            return Errno.EBADF;
        int length = write ? source.Length : destination.Length;
        if ((addr & (PageSize - 1)) != 0 || length == 0 || length % PhysicalMemory.PageSize != 0 || addr + (ulong)length > Mm.TaskSize)
            return Errno.EINVAL;
        ulong end = addr + (ulong)length;
        ulong copied = 0;
        int idleRounds = 0;
        while (true)
        {
            ulong before = copied;
            Errno err;
            _mutex.Lock();
            try
            {
                err = CopyPages(addr + (copied << PageShift), end, destination, source, write, ref copied);
            }
            finally
            {
                _mutex.Unlock();
            }
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

    // The device's DMA through its page table, pages [start, end) at buffer page `copied` on: ENOENT at the first page
    // without a usable entry. This device's data path is emulated here, as lib/test_hmm.c does; a device with engines
    // would be handed the bus addresses instead. Caller holds _mutex.
    private Errno CopyPages(ulong start, ulong end, Span<byte> destination, ReadOnlySpan<byte> source, bool write, ref ulong copied)
    {
        _mutex.AssertHeld("MyDevContext.CopyPages");
        var memory = _kernel.Memory;
        for (ulong vpn = start >> PageShift; vpn < end >> PageShift; vpn++)
        {
            ulong entry = _pt.Load(vpn);
            if ((entry & EntryPresent) == 0 || (write && (entry & EntryWrite) == 0))
                return Errno.ENOENT;
            var page = memory.PageBytes((entry & EntryBusMask) >> PageShift);
            int offset = (int)(copied << PageShift);
            if (write)
                source.Slice(offset, PhysicalMemory.PageSize).CopyTo(page);
            else
                page.CopyTo(destination.Slice(offset, PhysicalMemory.PageSize));
            copied++;
        }
        return Errno.Ok;
    }

    // dmirror_fault: faults [start, end) in chunks and commits each, holding a user reference on the mm. May sleep.
    private Errno Fault(ulong start, ulong end, bool write)
    {
        if (!_mm.MmGetNotZero())
            return Errno.EFAULT;
        try
        {
            var err = Errno.Ok;
            for (ulong addr = start; addr < end && err == Errno.Ok;)
            {
                ulong next = Math.Min(addr + (ChunkPages * PageSize), end);
                var range = new HmmRange(_notifier, addr, next)
                {
                    DefaultFlags = HmmPfn.ReqFault | (write ? HmmPfn.ReqWrite : 0),
                };
                err = RangeFaultAndCommit(range, write);
                addr = next;
            }
            return err;
        }
        finally
        {
            _mm.MmPut();
        }
    }

    // The read_begin / range_fault / lock / read_retry / commit loop, bounded by HMM_RANGE_DEFAULT_TIMEOUT. May sleep.
    private Errno RangeFaultAndCommit(HmmRange range, bool write)
    {
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
            _mutex.Lock();
            try
            {
                if (_notifier.ReadRetry(range.NotifierSeq))
                    continue;                     // an invalidation raced the fault: fault again
                return Commit(range, write);
            }
            finally
            {
                _mutex.Unlock();
            }
        }
    }

    // dmirror_do_fault: maps every faulted page for DMA and stores its entry, writable only where HMM reported
    // HMM_PFN_WRITE. Caller holds _mutex and has checked ReadRetry under it since the fault. Never sleeps.
    [DeviceMapCommit]
    private Errno Commit(HmmRange range, bool write)
    {
        _mutex.AssertHeld("MyDevContext.Commit");
        var pfns = range.HmmPfns;
        ulong vpn = range.Start >> PageShift;
        for (int i = 0; i < pfns.Length; i++, vpn++)
        {
            ulong e = pfns[i];
            if ((e & HmmPfn.Error) != 0 || (e & HmmPfn.Valid) == 0 || (write && (e & HmmPfn.Write) == 0))
                return Errno.EFAULT;
            var err = _device.Pci.DmaMapPage(HmmPfn.ToPfn(e), out ulong bus);
            if (err != Errno.Ok)
                return err;
            ulong entry = EntryPresent | bus | ((e & HmmPfn.Write) != 0 ? EntryWrite : 0);
            // The page's old entry, if any, is replaced like an invalidation: zapped, flushed, then unmapped.
            DropEntries(vpn, vpn);
            err = _pt.Store(vpn, entry, Gfp.Atomic);
            if (err != Errno.Ok)
            {
                _device.Pci.DmaUnmapPage(bus);
                return err;
            }
        }
        return Errno.Ok;
    }

    /// <inheritdoc />
    public override string ToString() => $"{_device} mirror of mm {_mm.Id}";
}
