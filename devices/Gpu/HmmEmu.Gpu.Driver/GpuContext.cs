using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;
using static HmmEmu.Gpu.GpuRegisters;

namespace HmmEmu.Gpu.Driver;

/// <summary>
/// A process's GPU context: a device address space that mirrors the whole address space of the process (shared
/// virtual memory), so kernels take the process's own pointers. Launch kernels, wait for them with
/// <see cref="Synchronize"/>, read the counters with <see cref="Stats"/>, and <see cref="Close"/> when done (process
/// exit closes it too).
/// </summary>
/// <remarks>
/// <para>Mirroring: one interval notifier over [0, TASK_SIZE). GPU faults are resolved by the device's fault handler
/// through <see cref="ResolveFault"/> (read_begin, range_fault, lock, read_retry, commit); the invalidate callback
/// removes device mappings before the CPU changes them (lock, set_seq, zap, TLB invalidate and wait, DMA unmap).</para>
/// <para>Locks: <c>_ptLock</c> (mutex) guards the device page-table leaves and is taken by the invalidate callback,
/// so nothing under it allocates (page-table pages are made beforehand under the table's own lock) or takes the mmap
/// lock. Order: mmap lock → <c>_ptLock</c> → the device's TLB-invalidation lock.</para>
/// </remarks>
public sealed class GpuContext : IMmuIntervalNotifierOps
{
    private const ulong PageSize = PhysicalMemory.PageSize;

    private readonly GpuDevice _device;
    private readonly HostKernel _kernel;
    private readonly Mm _mm;
    private readonly MmuIntervalNotifier _notifier;
    private readonly GpuPageTable _pt;
    private readonly KMutex _ptLock;
    private readonly List<ulong> _zapped = [];        // scratch for the invalidate callback; only under _ptLock
    private readonly WorkItem _teardown;
    private ulong _submitted;                         // last fence value submitted
    private int _closed;
    private int _mmGone;
    private int _resetSeen;
    private GpuStatus _error = GpuStatus.Success;     // sticky; only under _errorLock
    private readonly Lock _errorLock = new();

    private long _launches;
    private long _faults;
    private long _faultGroups;
    private long _batches;
    private long _cancels;
    private long _pagesMapped;
    private long _invalidations;
    private long _pagesZapped;
    private long _migratedToVram;
    private long _migratedToSystem;
    private long _aheadWindows;
    private ulong _lastFaultWindow = ulong.MaxValue - 1;   // fault work queue only
    private readonly Dictionary<ulong, int> _windowFaults = [];   // migrate-on-fault counters; fault work queue only

    // The placeholder for an id being set up.
    private GpuContext()
    {
        _device = null!;
        _kernel = null!;
        _mm = null!;
        _notifier = null!;
        _pt = null!;
        _ptLock = null!;
        _teardown = null!;
    }

    private GpuContext(GpuDevice device, Process process, ushort id, GpuPageTable pt)
    {
        _device = device;
        _kernel = device.Kernel;
        Process = process;
        _mm = process.Mm;
        Id = id;
        _pt = pt;
        _ptLock = new KMutex(_kernel, "gpu.ctx.pt");
        _notifier = new MmuIntervalNotifier(this);
        _teardown = new WorkItem($"gpu context {id} teardown", Close);
        _resetSeen = device.ResetGeneration;
    }

    /// <summary>The process whose address space this context mirrors.</summary>
    public Process Process { get; } = null!;

    /// <summary>The context id (the device address-space id).</summary>
    public ushort Id { get; }

    /// <summary>The device.</summary>
    public GpuDevice Device => _device;

    /// <summary>Whether the context has been closed (by <see cref="Close"/>, process exit or device removal).</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>The context's sticky error (<see cref="GpuStatus.Success"/> while there is none).</summary>
    public GpuStatus Error
    {
        get
        {
            lock (_errorLock)
                return _error;
        }
    }

    /// <summary>A snapshot of the counters.</summary>
    public GpuContextStats Stats => new(
        Interlocked.Read(ref _launches), Interlocked.Read(ref _faults), Interlocked.Read(ref _faultGroups),
        Interlocked.Read(ref _batches), Interlocked.Read(ref _cancels), Interlocked.Read(ref _pagesMapped),
        Interlocked.Read(ref _invalidations), Interlocked.Read(ref _pagesZapped),
        Interlocked.Read(ref _migratedToVram), Interlocked.Read(ref _migratedToSystem), Interlocked.Read(ref _aheadWindows));

    /// <summary>Device page-table leaves now valid (takes the page-table lock; for tests). May sleep.</summary>
    public bool HasMapping(ulong address)
    {
        using (_ptLock.Scoped())
            return _pt.GetLeaf(address).IsValid;
    }

    internal static GpuContext Reserved { get; } = new();

    internal static Errno Create(GpuDevice device, Process process, ushort id, out GpuContext? context)
    {
        context = null;
        var kernel = device.Kernel;
        var err = GpuPageTable.Create(kernel, device.Pci, "gpu.ctx.tables", out var pt);
        if (err != Errno.Ok)
            return err;
        var c = new GpuContext(device, process, id, pt!);
        if (!c._mm.MmGetNotZero())
        {
            pt!.Destroy();
            return Errno.EINVAL;
        }
        try
        {
            err = c._notifier.Insert(c._mm, 0, Mm.TaskSize);
        }
        finally
        {
            c._mm.MmPut();
        }
        if (err != Errno.Ok)
        {
            pt!.Destroy();
            return err;
        }
        c.Validate();
        context = c;
        return Errno.Ok;
    }

    // ---- the user API ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Launches <paramref name="kernel"/> with its arguments (see <see cref="GpuKernel"/>; pointers are this process's
    /// addresses) and returns its fence. After an error the context launches nothing and returns the last fence:
    /// <see cref="Synchronize"/> reports the error. May sleep.
    /// </summary>
    public GpuFence Launch(GpuKernel kernel, ulong arg0 = 0, ulong arg1 = 0, ulong arg2 = 0, ulong arg3 = 0, ulong arg4 = 0)
    {
        if (kernel == GpuKernel.None || !Enum.IsDefined(kernel))
            throw new ArgumentOutOfRangeException(nameof(kernel), kernel, "Launch needs one of the GpuKernel kernels (Fill, Copy, Saxpy, ReduceSum, AtomicAdd, PointerChase).");
        ObjectDisposedException.ThrowIf(IsClosed, this);
        _kernel.MightSleep("GpuContext.Launch");
        if (!Error.IsOk)
            return new GpuFence(Id, Interlocked.Read(ref _submitted));
        ulong value = Interlocked.Read(ref _submitted) + 1;
        var command = GpuCommand.Launch(Id, kernel, _device.FenceAddress(Id), value, GpuCommandFlags.Interrupt, arg0, arg1, arg2, arg3, arg4);
        var err = _device.Submit(command);
        if (err != Errno.Ok)
        {
            SetError(new GpuStatus(err == Errno.ENODEV ? GpuContextError.ContextInvalid : GpuContextError.DeviceReset, 0,
                err == Errno.ENODEV ? "the GPU has been removed." : "the GPU's command ring stopped; the device is being reset."));
            return new GpuFence(Id, value - 1);
        }
        Interlocked.Exchange(ref _submitted, value);
        Interlocked.Increment(ref _launches);
        return new GpuFence(Id, value);
    }

    /// <summary>Fill: <c>dst[i] = value</c> for <paramref name="count"/> u32 elements. May sleep.</summary>
    public GpuFence Fill(ulong dst, ulong count, uint value) => Launch(GpuKernel.Fill, dst, count, value);

    /// <summary>Copy <paramref name="bytes"/> bytes from <paramref name="src"/> to <paramref name="dst"/>. May sleep.</summary>
    public GpuFence Copy(ulong dst, ulong src, ulong bytes) => Launch(GpuKernel.Copy, dst, src, bytes);

    /// <summary>SAXPY: <c>y[i] = a·x[i] + y[i]</c> over <paramref name="count"/> f32 elements. May sleep.</summary>
    public GpuFence Saxpy(ulong y, ulong x, ulong count, float a) =>
        Launch(GpuKernel.Saxpy, y, x, count, BitConverter.SingleToUInt32Bits(a));

    /// <summary>Reduce-sum of <paramref name="count"/> u32 elements at <paramref name="src"/> into the u64 at <paramref name="dst"/>. May sleep.</summary>
    public GpuFence ReduceSum(ulong dst, ulong src, ulong count) => Launch(GpuKernel.ReduceSum, dst, src, count);

    /// <summary>Atomically adds <paramref name="addend"/> to each of <paramref name="count"/> u64 elements at <paramref name="dst"/>. May sleep.</summary>
    public GpuFence AtomicAdd(ulong dst, ulong count, ulong addend) => Launch(GpuKernel.AtomicAdd, dst, count, addend);

    /// <summary>Follows <paramref name="steps"/> u64 pointers from <paramref name="start"/> and stores the last at <paramref name="dst"/>. May sleep.</summary>
    public GpuFence PointerChase(ulong start, ulong steps, ulong dst) => Launch(GpuKernel.PointerChase, start, steps, dst);

    /// <summary>
    /// Moves [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>) of the process to
    /// <paramref name="target"/> now, instead of on demand: to VRAM (and maps it on the GPU), or back to system memory.
    /// Pages that cannot move (pinned, VRAM full of pages that cannot be evicted) stay. Returns EINVAL for an unaligned
    /// or empty range, EFAULT if part of it is not mapped. May sleep.
    /// </summary>
    public Errno Prefetch(ulong start, ulong length, GpuMemoryTarget target)
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        if (!Enum.IsDefined(target))
            throw new ArgumentOutOfRangeException(nameof(target), target, "Prefetch to GpuMemoryTarget.Vram or GpuMemoryTarget.System.");
        _kernel.MightSleep("GpuContext.Prefetch");
        if (length == 0 || ((start | length) & (PageSize - 1)) != 0 || start + length < start || start + length > Mm.TaskSize)
            return Errno.EINVAL;
        ulong end = start + length;
        using (_device.Migrator.Lock())
        {
            long moved;
            Errno err;
            if (target == GpuMemoryTarget.Vram)
            {
                err = _device.Migrator.ToVramLocked(this, start, end, out moved);
                CountMigrated(moved, 0);
                if (err == Errno.Ok)
                    err = ResolveFault(start, end, GpuFaultAccess.Read);
            }
            else
            {
                err = _device.Migrator.ToSystemLocked(this, start, end, out moved);
                CountMigrated(0, moved);
            }
            return err;
        }
    }

    // Whether the device has finished every command of this context (or can no longer: reset, removal).
    // A reset discards work without writing its fences: a context it failed will never see them.
    private bool AllFencesDone() =>
        _device.FenceValue(Id) >= Interlocked.Read(ref _submitted) || _device.IsRemoved
        || _device.ResetGeneration != Volatile.Read(ref _resetSeen) || Error.Error == GpuContextError.DeviceReset;

    /// <summary>Whether <paramref name="fence"/> has been reached (or the context stopped).</summary>
    public bool IsDone(GpuFence fence) =>
        _device.FenceValue(Id) >= fence.Value || !Error.IsOk || IsClosed || _device.ResetGeneration != Volatile.Read(ref _resetSeen);

    /// <summary>Waits until <paramref name="fence"/> is reached and returns the context's status. May sleep.</summary>
    public GpuStatus Wait(GpuFence fence)
    {
        if (fence.Context != Id)
            throw new ArgumentException($"Fence of context {fence.Context} waited on context {Id}; wait on the context that launched it.", nameof(fence));
        _kernel.MightSleep("GpuContext.Wait");
        _device.WaitEvent((Context: this, Fence: fence), static s => s.Context.IsDone(s.Fence) || s.Context.DeviceReportsError());
        return CollectStatus();
    }

    /// <summary>Waits for everything launched so far and returns the context's status (its sticky error, if any). May sleep.</summary>
    public GpuStatus Synchronize() => Wait(new GpuFence(Id, Interlocked.Read(ref _submitted)));

    /// <summary>
    /// Closes the context: its queued work is cancelled, its device mappings and page table are released, and its
    /// id becomes free. Idempotent. May sleep.
    /// </summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
            return;
        _kernel.MightSleep("GpuContext.Close");
        var bar = _device.Bar;
        ulong block = ContextBlock(Id);
        if (!_device.IsRemoved)
        {
            _device.CancelFaults(Id);
            bar.Write32(block + CtxControl, 0);
            // Everything submitted finishes (failed) once the device has seen VALID clear.
            _device.WaitEvent(this, static c => c.AllFencesDone());
        }
        _notifier.Remove();
        using (_ptLock.Scoped())
        {
            _zapped.Clear();
            _pt.Zap(0, Mm.TaskSize, _zapped);
            // Always, even with no leaf left: a walk still in flight may be reading the table pages freed below.
            _device.InvalidateTlb(Id, 0, Mm.TaskSize);
            UnmapZapped();
        }
        _pt.Destroy();
        _device.ReleaseContextId(Id);
        _device.WakeEvents();
    }

    /// <inheritdoc />
    public override string ToString() => $"gpu context {Id} of {Process}";

    // ---- the invalidate callback -----------------------------------------------------------------------------------

    /// <summary>
    /// Removes the device's mappings of the range before the CPU changes it: lock, set_seq, zap, TLB invalidate and
    /// wait, DMA unmap. In a non-blockable range (OOM reaper) it cannot wait for the device, so it succeeds only when
    /// nothing is mapped there and otherwise asks the caller to retry. May sleep only if the range is blockable.
    /// </summary>
    public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
    {
        // make_device_exclusive on our behalf: the page stays mapped to us, now with atomic access; leaving the
        // sequence alone lets the atomic fault's read_retry succeed (nouveau does the same).
        if (range.Event == NotifierEvent.Exclusive && ReferenceEquals(range.Owner, _device))
            return true;
        // Our own migration to VRAM: the migration removed the device's mappings of the range itself before
        // migrate_vma_setup (it had to: DMA-mapped pages cannot move) and holds the migration lock, so nothing mapped
        // them since; the sequence is still published so that no stale fault result is committed.
        if (range.Event == NotifierEvent.Migrate && ReferenceEquals(range.Owner, _device) && _device.Migrator.InOwnMigrationToVram)
        {
            using (_ptLock.Scoped())
                notifier.SetSeq(curSeq);
            return true;
        }
        if (!range.Blockable)
        {
            if (!_ptLock.TryLock())
                return false;
            try
            {
                if (_pt.AnyValid(range.Start, range.End))
                    return false;
                notifier.SetSeq(curSeq);
                return true;
            }
            finally
            {
                _ptLock.Unlock();
            }
        }
        _ptLock.Lock();
        try
        {
            notifier.SetSeq(curSeq);
            _zapped.Clear();
            int n = _pt.Zap(range.Start, range.End, _zapped);
            if (n != 0)
            {
                // The device may still hold the old translations in its TLBs and use them in running kernels: only
                // after the invalidation completes may the pages go back to the CPU (or be freed).
                _device.InvalidateTlb(Id, range.Start, range.End);
                UnmapZapped();
                Interlocked.Increment(ref _invalidations);
                Interlocked.Add(ref _pagesZapped, n);
            }
        }
        finally
        {
            _ptLock.Unlock();
        }
        if (range.Event == NotifierEvent.Release && Interlocked.Exchange(ref _mmGone, 1) == 0)
            _kernel.SystemWorkQueue.Queue(_teardown);   // the notifier cannot be removed from its own callback
        return true;
    }

    // ---- fault resolution (on the device's fault work queue) --------------------------------------------------------

    /// <summary>
    /// Maps [<paramref name="start"/>, <paramref name="end"/>) for <paramref name="access"/>: the read_begin /
    /// range_fault / lock / read_retry / commit loop (atomics through make_device_exclusive, page by page). Returns
    /// EFAULT or EPERM when the process cannot give that access (the caller cancels the fault). May sleep.
    /// </summary>
    internal Errno ResolveFault(ulong start, ulong end, GpuFaultAccess access, ulong windowBytes = 0)
    {
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
    /// Removes the device's mappings of [<paramref name="start"/>, <paramref name="end"/>) on the driver's own
    /// initiative (before migrating it): zap, TLB invalidate and wait, DMA unmap. May sleep.
    /// </summary>
    internal void ZapRange(ulong start, ulong end)
    {
        using (_ptLock.Scoped())
        {
            _zapped.Clear();
            int n = _pt.Zap(start, end, _zapped);
            if (n == 0)
                return;
            _device.InvalidateTlb(Id, start, end);
            UnmapZapped();
            Interlocked.Add(ref _pagesZapped, n);
        }
    }

    /// <summary>Counts a fault on the window of <paramref name="address"/>; true when it reached the migrate-on-fault threshold (the count restarts). Fault work queue only.</summary>
    internal bool CountWindowFault(ulong address, ulong windowBytes, int threshold)
    {
        if (threshold <= 0)
            return false;
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
    /// Records that window <paramref name="window"/> faulted and says whether it directly follows the window that
    /// faulted before (a kernel streaming through memory). Returns true. Fault work queue only.
    /// </summary>
    internal bool NoteFaultWindow(ulong window, out bool streaming)
    {
        streaming = window == _lastFaultWindow + 1;
        _lastFaultWindow = window;
        return true;
    }

    /// <summary>Counts a window mapped ahead of the device.</summary>
    internal void CountAhead() => Interlocked.Increment(ref _aheadWindows);

    /// <summary>Counts pages this context's own migrations moved.</summary>
    internal void CountMigrated(long toVram, long toSystem)
    {
        Interlocked.Add(ref _migratedToVram, toVram);
        Interlocked.Add(ref _migratedToSystem, toSystem);
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

    /// <summary>Counts one fault batch that involved this context, with its records and groups.</summary>
    internal void CountBatch(int records, int groups)
    {
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _faults, records);
        Interlocked.Add(ref _faultGroups, groups);
    }

    /// <summary>Records why a fault was cancelled, for <see cref="Synchronize"/> to report.</summary>
    internal void NoteCancelled(ulong address, GpuFaultAccess access, Errno err)
    {
        Interlocked.Increment(ref _cancels);
        string what = access switch { GpuFaultAccess.Write => "write", GpuFaultAccess.Atomic => "atomic", _ => "read" };
        string why = err switch
        {
            Errno.EFAULT => "the address is not mapped in the process (or the process is exiting)",
            Errno.EPERM or Errno.EACCES => $"the process's mapping does not allow a {what}",
            Errno.EOPNOTSUPP => "atomics need private anonymous memory",
            Errno.EBUSY => "the range kept changing for longer than the fault timeout",
            _ => $"resolving it failed with {err}",
        };
        SetError(new GpuStatus(GpuContextError.FaultCancelled, address, $"GPU {what} fault at 0x{address:x} cancelled: {why}."));
    }

    /// <summary>After a device reset: unfinished work is lost (DeviceReset); an idle context is programmed again.</summary>
    internal void AfterReset()
    {
        Volatile.Write(ref _resetSeen, _device.ResetGeneration);
        if (IsClosed)
            return;
        if (_device.FenceValue(Id) < Interlocked.Read(ref _submitted))
        {
            SetError(new GpuStatus(GpuContextError.DeviceReset, 0, "the GPU was reset while this context had work queued or running; that work is lost."));
            return;
        }
        if (Error.IsOk)
            Validate();
    }

    private Errno ResolveRange(ulong start, ulong end, bool write)
    {
        ulong deadline = _kernel.Clock.Now + _device.Options.RangeTimeoutNs;
        bool forceWrite = write;
        int readOnlyVramRetries = 0;
        var range = new HmmRange(_notifier, start, end) { DevPrivateOwner = _device };
        while (true)
        {
            if (_kernel.Clock.Now > deadline)
                return Errno.EBUSY;
            range.DefaultFlags = HmmPfn.ReqFault | (forceWrite ? HmmPfn.ReqWrite : 0);
            range.NotifierSeq = _notifier.ReadBegin();
            Errno err;
            using (_mm.MmapReadLock())
                err = Hmm.RangeFault(range);
            if (err == Errno.EBUSY)
                continue;
            if (err != Errno.Ok)
                return err;
            if (write && HasReadOnlyVramPage(range) && ++readOnlyVramRetries <= 2)
            {
                // range_fault reports our own device-private pages as they are, without faulting them writable (so
                // does Linux). A read-only one (shared after fork, or migrated while read-only) must come back to
                // system memory, where the write fault breaks the sharing; then fault again.
                _device.Migrator.ToSystemLocked(this, start, end, out long back);
                CountMigrated(0, back);
                continue;
            }
            if (!forceWrite && HasZeroPage(range))
            {
                // The shared zero page cannot be DMA-mapped: fault the range in writable (it gets its own pages).
                forceWrite = true;
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
                _ptLock.Lock();
                try
                {
                    if (_notifier.ReadRetry(seq))
                        continue;
                    return MapPage(va, pfn, PtePermissions.ReadWrite | PtePermissions.Atomic, _pt.LeafTable(va));
                }
                finally
                {
                    _ptLock.Unlock();
                }
            }
            finally
            {
                mem.UnlockPage(pfn);
                mem.PutPage(pfn);
            }
        }
    }

    private bool HasAtomicMapping(ulong va)
    {
        using (_ptLock.Scoped())
            return (_pt.GetLeaf(va).Permissions & PtePermissions.Atomic) != 0;
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

    private static bool HasZeroPage(HmmRange range)
    {
        foreach (ulong e in range.HmmPfns)
        {
            if ((e & HmmPfn.Valid) != 0 && HmmPfn.ToPfn(e) == PhysicalMemory.ZeroPfn)
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

    // Drops the DMA mappings of the leaves just zapped. Caller holds _ptLock, after the TLB invalidation completed.
    private void UnmapZapped()
    {
        foreach (ulong bus in _zapped)
            _device.Pci.DmaUnmapPage(bus);
        _zapped.Clear();
    }

    private void Validate()
    {
        var bar = _device.Bar;
        ulong block = ContextBlock(Id);
        bar.Write32(block + CtxControl, 0);
        bar.Write64(block + CtxPtBase, _pt.RootEntry.Value);
        bar.Write32(block + CtxControl, CtxControlValid);
    }

    // Whether the device shows this context in the error state (so a waiter stops waiting for fences).
    private bool DeviceReportsError()
    {
        if (_device.IsRemoved || IsClosed)
            return true;
        uint status = _device.Bar.Read32(ContextBlock(Id) + CtxStatus);
        return (GpuContextState)(status & 0x3) == GpuContextState.Error && _device.FenceValue(Id) >= Interlocked.Read(ref _submitted);
    }

    // The status after a wait: the driver's own record of a cancelled fault wins (it knows why); else the device's.
    private GpuStatus CollectStatus()
    {
        var mine = Error;
        if (!mine.IsOk)
            return mine;
        if (_device.IsRemoved)
            return new GpuStatus(GpuContextError.ContextInvalid, 0, "the GPU driver was unbound from the device; unfinished work is lost.");
        if (IsClosed)
            return new GpuStatus(GpuContextError.ContextInvalid, 0, "the context is closed.");
        uint status = _device.Bar.Read32(ContextBlock(Id) + CtxStatus);
        if ((GpuContextState)(status & 0x3) != GpuContextState.Error)
            return GpuStatus.Success;
        var error = (GpuContextError)((status >> 8) & 0xFF);
        ulong address = _device.Bar.Read64(ContextBlock(Id) + CtxErrorAddress);
        string message = error switch
        {
            GpuContextError.BadArgument => "a kernel argument was unusable (a misaligned pointer, or a zero or overflowing count).",
            GpuContextError.AddressOutOfRange => "a kernel used an address outside the 48-bit device address space.",
            GpuContextError.BadCommand => "the device refused a command.",
            GpuContextError.BadPageTable => "the device found a malformed page-table entry.",
            GpuContextError.DeviceReset => "the GPU was reset while this context had work.",
            GpuContextError.FaultCancelled => "a GPU fault could not be resolved.",
            _ => $"the device reported {error}.",
        };
        var s = new GpuStatus(error, address, message);
        SetError(s);
        return s;
    }

    private void SetError(GpuStatus status)
    {
        lock (_errorLock)
        {
            if (_error.IsOk)
                _error = status;
        }
        _device.WakeEvents();
    }
}
