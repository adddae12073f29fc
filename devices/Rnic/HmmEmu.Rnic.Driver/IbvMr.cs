using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Rnic.Driver;

/// <summary>
/// A memory region (ibv_mr) over a range of the process's address space, with its MTT (one entry per 4 KiB page) in
/// memory the device reads. A pinned MR pins and DMA-maps every page at registration. An on-demand-paging MR pins
/// nothing: its MTT starts invalid, device misses are resolved through HMM (<see cref="ResolveFault"/>), and an
/// interval notifier over the range zaps the entries (through INVALIDATE_MTT) before the CPU changes the pages.
/// </summary>
public sealed class IbvMr : IMmuIntervalNotifierOps
{
    private const ulong PageSize = 4096;

    private readonly RnicDevice _device;
    private readonly KMutex _lock;
    private readonly KMutex _faultLock;
    private readonly ulong _firstPage;
    private const ulong NotMapped = ulong.MaxValue;   // a _bus slot with no DMA mapping (bus address 0 is the zero page)
    private readonly ulong[] _bus;
    private int _deregistered;                        // 1 once DEREG_MR completed: the device no longer uses the MTT
    private Completion? _deregIssued;                 // set when DEREG_MR is sent; completed when it has been answered
    private readonly bool[] _writable;
    private ulong[]? _pinned;
    private MmuIntervalNotifier? _notifier;
    private DmaCoherentBuffer? _mtt;
    private int _mmGone;
    private long _pagesMapped;
    private long _invalidations;

    internal IbvMr(IbvPd pd, ulong address, ulong length, RnicAccessFlags access)
    {
        Pd = pd;
        _device = pd.Context.Device;
        Address = address;
        Length = length;
        Access = access;
        _firstPage = address & ~(PageSize - 1);
        Entries = (uint)RnicMttEntry.PagesSpanned(address, length);
        _bus = new ulong[Entries];
        Array.Fill(_bus, NotMapped);
        _writable = new bool[Entries];
        _lock = new KMutex(_device.Kernel, "rnic mr");
        _faultLock = new KMutex(_device.Kernel, "rnic mr fault");
    }

    /// <summary>Its PD.</summary>
    public IbvPd Pd { get; }

    /// <summary>The first byte (the iova WQEs and peers use is the process's virtual address).</summary>
    public ulong Address { get; }

    /// <summary>Bytes registered.</summary>
    public ulong Length { get; }

    /// <summary>The access flags it was registered with.</summary>
    public RnicAccessFlags Access { get; }

    /// <summary>The local key (equal to <see cref="Rkey"/> on this device).</summary>
    public uint Lkey { get; private set; }

    /// <summary>The remote key a peer puts in its RDMA and atomic WQEs.</summary>
    public uint Rkey => Lkey;

    /// <summary>Whether this is an on-demand-paging MR.</summary>
    public bool IsOnDemand => (Access & RnicAccessFlags.OnDemand) != 0;

    /// <summary>MTT entries (pages spanned).</summary>
    public uint Entries { get; }

    /// <summary>Pages currently mapped for the device (DMA-mapped and valid in the MTT).</summary>
    public long PagesMapped => Interlocked.Read(ref _pagesMapped);

    /// <summary>Invalidations that zapped at least one entry.</summary>
    public long Invalidations => Interlocked.Read(ref _invalidations);

    /// <summary>
    /// The interval notifier that keeps an ODP MR coherent with the process (for coherence checkers); null for a pinned
    /// MR and once the MR is deregistered.
    /// </summary>
    public MmuIntervalNotifier? Notifier => Volatile.Read(ref _notifier);

    private Mm Mm => Pd.Context.Process.Mm;

    private bool DeviceWrites => (Access & (RnicAccessFlags.LocalWrite | RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteAtomic)) != 0;

    // ---- registration (syscall context; may sleep) ----------------------------------------------------------------

    internal Errno Register()
    {
        var err = _device.Alloc((ulong)Entries * RnicMttEntry.Size, out var mtt);
        if (err != Errno.Ok)
            return err;
        _mtt = mtt;
        err = IsOnDemand ? RegisterOnDemand() : RegisterPinned();
        if (err != Errno.Ok)
            Release();
        return err;
    }

    private Errno RegisterPinned()
    {
        var pfns = new ulong[Entries];
        var err = Mm.GetUserPages(_firstPage, (DeviceWrites ? GupFlags.Write : GupFlags.None) | GupFlags.LongTerm, pfns, out int pinned);
        _pinned = pfns[..pinned];
        if (err != Errno.Ok)
            return err;
        for (int i = 0; i < Entries; i++)
        {
            if ((err = _device.Pci.DmaMapPage(pfns[i], out ulong bus)) != Errno.Ok)
                return err;
            _bus[i] = bus;
            _writable[i] = DeviceWrites;
            WriteEntry(i, RnicMttEntry.Create(bus, DeviceWrites));
            Interlocked.Increment(ref _pagesMapped);
        }
        return Command(onDemand: false);
    }

    private Errno RegisterOnDemand()
    {
        // The notifier goes in first, so that no invalidation between registration and the first fault is missed.
        _notifier = new MmuIntervalNotifier(this);
        var err = _notifier.Insert(Mm, _firstPage, (ulong)Entries * PageSize);
        if (err != Errno.Ok)
        {
            _notifier = null;
            return err;
        }
        return Command(onDemand: true);
    }

    private Errno Command(bool onDemand)
    {
        var done = _device.Execute(RnicCommand.RegMr(0, Pd.Number, Address, Length, Access, _mtt!.BusAddress, Entries, onDemand));
        if (!done.IsOk)
            return RnicDevice.ToErrno(done.Status);
        Lkey = done.Key;
        return Errno.Ok;
    }

    /// <summary>
    /// Teardown in the safe order: DEREG_MR (the key stops resolving and the MR's DMA drains), then the notifier goes,
    /// then the DMA mappings, the pins and the MTT. May sleep.
    /// </summary>
    internal Errno Deregister()
    {
        if (Lkey != 0)
        {
            var issued = new Completion(_device.Kernel, "rnic dereg_mr");
            Volatile.Write(ref _deregIssued, issued);
            var done = _device.DeregMrAndWait(new RnicKey(Lkey));
            issued.CompleteAll();
            if (!done.IsOk && done.Status != RnicCommandStatus.BadObject)
                return RnicDevice.ToErrno(done.Status);
        }
        // From here the device can no longer translate through this MR: an invalidation that runs before the notifier
        // is gone has nothing to wait for on the device (INVALIDATE_MTT would find no MR), only pages to unmap.
        Volatile.Write(ref _deregistered, 1);
        Release();
        return Errno.Ok;
    }

    // Waits for a fault or prefetch being served on this MR (it holds the fault lock), so that none uses the notifier
    // or the MTT while they go.
    private void Release()
    {
        using var serving = _faultLock.Scoped();
        _notifier?.Remove();
        _notifier = null;
        using (_lock.Scoped())
        {
            for (int i = 0; i < _bus.Length; i++)
                Unmap(i);
        }
        if (_pinned is not null)
        {
            foreach (ulong pfn in _pinned)
                _device.Kernel.Memory.PutPage(pfn);
            _pinned = null;
        }
        _device.Free(_mtt);
        _mtt = null;
    }

    // ---- ODP: faults (the driver's fault work queue; may sleep) --------------------------------------------------------

    /// <summary>
    /// Maps [<paramref name="address"/>, +<paramref name="length"/>) (clipped to the MR and to the fault window) for the
    /// device: read_begin, hmm_range_fault, take the MR's lock, read_retry (fault again if an invalidation raced),
    /// DMA-map the pages and write their MTT entries valid, unlock. Returns EFAULT/EPERM when the process cannot give
    /// that access. May sleep.
    /// </summary>
    internal Errno ResolveFault(ulong address, ulong length, bool write)
    {
        _device.Kernel.MightSleep("IbvMr.ResolveFault");
        using var serving = _faultLock.Scoped();
        if (_notifier is null || Volatile.Read(ref _mmGone) != 0)
            return Errno.EFAULT;
        if (write && !DeviceWrites)
            return Errno.EPERM;
        ulong mrEnd = _firstPage + ((ulong)Entries * PageSize);
        ulong start = Math.Max(address & ~(PageSize - 1), _firstPage);
        ulong end = Math.Min(Math.Min((address + Math.Max(length, 1) + PageSize - 1) & ~(PageSize - 1), mrEnd),
            start + _device.Options.FaultWindowBytes);
        if (start >= end)
            return Errno.EFAULT;
        if (!Mm.MmGetNotZero())
            return Errno.EFAULT;
        try
        {
            return ResolveRange(start, end, write);
        }
        finally
        {
            Mm.MmPut();
        }
    }

    // A read fault maps what range_fault returns as it is: an untouched page is the shared zero page, DMA-mapped read
    // only (as in Linux; a device write to it misses and faults it writable, which COWs it and invalidates us).
    private Errno ResolveRange(ulong start, ulong end, bool write)
    {
        var range = new HmmRange(_notifier!, start, end);
        for (int attempt = 0; ; attempt++)
        {
            if (attempt > 1000)
                return Errno.EBUSY;
            range.DefaultFlags = HmmPfn.ReqFault | (write ? HmmPfn.ReqWrite : 0);
            range.NotifierSeq = _notifier!.ReadBegin();
            Errno err;
            using (Mm.MmapReadLock())
                err = Hmm.RangeFault(range);
            if (err == Errno.EBUSY)
                continue;
            if (err != Errno.Ok)
                return err;
            _lock.Lock();
            try
            {
                if (_notifier.ReadRetry(range.NotifierSeq))
                    continue;       // an invalidation raced us: fault again
                return Commit(range, write);
            }
            finally
            {
                _lock.Unlock();
            }
        }
    }

    // Under the MR's lock: DMA-map each page and write its entry valid. An entry already valid for the same page is
    // kept (upgraded to writable in place if needed; the device drops a read-only entry on a write miss).
    private Errno Commit(HmmRange range, bool write)
    {
        _lock.AssertHeld("IbvMr.Commit");
        var pfns = range.HmmPfns;
        for (int i = 0; i < range.PageCount; i++)
        {
            ulong e = pfns[i];
            if ((e & HmmPfn.Error) != 0 || (e & HmmPfn.Valid) == 0)
                return Errno.EFAULT;
            bool writable = (e & HmmPfn.Write) != 0 && DeviceWrites;
            if (write && !writable)
                return Errno.EPERM;
            int index = (int)((range.Start - _firstPage) / PageSize) + i;
            ulong pfn = HmmPfn.ToPfn(e);
            if (_bus[index] != NotMapped)
            {
                // Still valid (no invalidation since, or read_retry would have failed): same page.
                if (writable && !_writable[index])
                {
                    _writable[index] = true;
                    WriteEntry(index, RnicMttEntry.Create(_bus[index], true));
                }
                continue;
            }
            var err = _device.Pci.DmaMapPage(pfn, out ulong bus);
            if (err != Errno.Ok)
                return err;
            _bus[index] = bus;
            _writable[index] = writable;
            WriteEntry(index, RnicMttEntry.Create(bus, writable));
            Interlocked.Increment(ref _pagesMapped);
        }
        return Errno.Ok;
    }

    /// <summary>ibv_advise_mr prefetch: maps the range as a fault would, without a QP. May sleep.</summary>
    internal Errno Prefetch(ulong address, ulong length, bool write)
    {
        if (!IsOnDemand)
            return Errno.Ok;        // a pinned MR is always mapped
        for (ulong at = address; at < address + length;)
        {
            ulong chunk = Math.Min(length - (at - address), _device.Options.FaultWindowBytes - (at & (PageSize - 1)));
            var err = ResolveFault(at, chunk, write);
            if (err != Errno.Ok)
                return err;
            at += chunk;
        }
        return Errno.Ok;
    }

    // ---- ODP: invalidation (notifier callback) ----------------------------------------------------------------------

    /// <summary>
    /// Before the CPU changes pages of the MR: bail if not blockable and something is mapped; otherwise take the MR's
    /// lock, set_seq, zap the mapped entries through INVALIDATE_MTT and wait until the device's DMA through them has
    /// drained, then drop the DMA mappings and unlock. May sleep only if the range is blockable.
    /// </summary>
    public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
    {
        ArgumentNullException.ThrowIfNull(notifier);
        ulong start = Math.Max(range.Start, _firstPage), end = Math.Min(range.End, _firstPage + ((ulong)Entries * PageSize));
        int first = start < end ? (int)((start - _firstPage) / PageSize) : 0;
        int last = start < end ? (int)((end - 1 - _firstPage) / PageSize) : -1;
        if (!range.Blockable)
        {
            if (!_lock.TryLock())
                return false;
            try
            {
                if (AnyMapped(first, last))
                    return false;
                notifier.SetSeq(curSeq);
                return true;
            }
            finally
            {
                _lock.Unlock();
            }
        }
        _lock.Lock();
        try
        {
            notifier.SetSeq(curSeq);
            if (range.Event == NotifierEvent.Release)
                Volatile.Write(ref _mmGone, 1);
            int lo = -1, hi = -1;
            for (int i = first; i <= last; i++)
            {
                if (_bus[i] != NotMapped)
                {
                    if (lo < 0)
                        lo = i;
                    hi = i;
                }
            }
            if (lo < 0)
                return true;
            // The device may be using these translations right now: only after INVALIDATE_MTT completes (its DMA
            // through them drained) may the pages go back to the CPU. Once DEREG_MR completed it cannot: skip it.
            FlushDeviceTranslations(lo, hi);
            for (int i = lo; i <= hi; i++)
                Unmap(i);
            Interlocked.Increment(ref _invalidations);
            return true;
        }
        finally
        {
            _lock.Unlock();
        }
    }

    // INVALIDATE_MTT of entries [lo, hi] and wait for the DMA through them to drain; nothing to do once DEREG_MR has
    // completed (it already made the device drop and drain every translation of this MR). Caller holds _lock.
    [HmmEmu.Annotations.TlbFlush]
    private void FlushDeviceTranslations(int lo, int hi)
    {
        if (Volatile.Read(ref _deregistered) != 0)
            return;
        var done = _device.InvalidateMttAndWait(new RnicKey(Lkey), (ulong)lo, (ulong)(hi - lo + 1));
        if (done.Status == RnicCommandStatus.BadObject && Volatile.Read(ref _deregIssued) is { } dereg)
        {
            // A DEREG_MR racing this invalidation took the MR first: the device drops the MR's translations and drains
            // its DMA before answering it, so once it is answered nothing of this range is in use any more.
            dereg.Wait();
            return;
        }
        if (!done.IsOk && !_device.IsRemoved)
        {
            _device.Kernel.Warn($"rnic: INVALIDATE_MTT of MR 0x{Lkey:x8} entries {lo}..{hi} failed ({done.Status}); " +
                "the pages are released although the device may still hold their translations.");
        }
    }

    private bool AnyMapped(int first, int last)
    {
        for (int i = first; i <= last; i++)
        {
            if (_bus[i] != NotMapped)
                return true;
        }
        return false;
    }

    [HmmEmu.Annotations.DmaUnmap]
    private void Unmap(int index)
    {
        if (_bus[index] == NotMapped)
            return;
        _device.Pci.DmaUnmapPage(_bus[index]);
        _bus[index] = NotMapped;
        _writable[index] = false;
        Interlocked.Decrement(ref _pagesMapped);
    }

    private void WriteEntry(int index, RnicMttEntry entry) =>
        entry.Write(_mtt!.Span.Slice(index * RnicMttEntry.Size, RnicMttEntry.Size));
}
