using HmmEmu.Annotations;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
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
public sealed partial class GpuContext : IMmuIntervalNotifierOps
{
    private const ulong PageSize = PhysicalMemory.PageSize;

    [OwnerToken]   // the pgmap owner GpuVram registered
    private readonly GpuDevice _device;
    private readonly HostKernel _kernel;
    private readonly Mm _mm;
    private readonly MmuIntervalNotifier _notifier;
    private readonly GpuPageTable _pt;
    private readonly KMutex _ptLock;
    private readonly List<ulong> _zapped = [];        // scratch for the invalidate callback; only under _ptLock
    private readonly WorkItem _teardown;
    private readonly KMutex _launchLock;              // orders Launch against Close and reset recovery
    private ulong _submitted;                         // last fence value submitted; written under _launchLock
    private ulong _lostToReset;                       // fences up to this value were discarded by a reset (never written)
    private int _closed;
    private int _closeFinished;
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
    private ulong _lastFaultPage = ulong.MaxValue;        // thrashing throttle; fault work queue only
    private int _repeatFaults;                           // fault work queue only
    private readonly Dictionary<ulong, int> _windowMigrations = [];   // fault-driven migrations per window (thrashing); fault work queue only
    private readonly List<(ulong Start, ulong End)> _unmapped = [];     // ranges unmapped since the fault path looked; under _ptLock
    private bool _unmappedOverflow;                                     // more than MaxPendingUnmaps of them: forget every window; under _ptLock
    private int _unmappedPending;                                       // _unmapped or _unmappedOverflow has news (read without the lock)

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
        _launchLock = null!;
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
        _launchLock = new KMutex(_kernel, "gpu.ctx.launch");
        _resetSeen = device.ResetGeneration;
        // Fence values rise per id across the contexts that use it: the slot still holds the last value the device
        // wrote for the previous one, and a fresh count from 0 would read as already reached.
        _submitted = device.FenceValue(id);
    }

    /// <summary>The process whose address space this context mirrors.</summary>
    public Process Process { get; } = null!;

    /// <summary>The context id (the device address-space id).</summary>
    public ushort Id { get; }

    /// <summary>The device.</summary>
    public GpuDevice Device => _device;

    /// <summary>The interval notifier that keeps this context coherent with the process (for coherence checkers).</summary>
    public MmuIntervalNotifier Notifier => _notifier;

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

    /// <summary>The fence value of the last command launched on this context (0 before the first).</summary>
    public ulong LaunchedFence => Interlocked.Read(ref _submitted);

    /// <summary>The fence value the device has written for this context: every command up to it has finished.</summary>
    public ulong CompletedFence => _device.FenceValue(Id);

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
            return !IsClosed && _pt.GetLeaf(address).IsValid;
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
        // Under the launch lock: the fence value, the submission and its publication are one step for Close (which
        // must see every command it waits for), for reset recovery (which must see every command the reset lost) and
        // for another thread launching on this context (which must not reuse the value).
        using (_launchLock.Scoped())
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            ulong last = Interlocked.Read(ref _submitted);
            if (!Error.IsOk)
                return new GpuFence(Id, last);
            ulong value = last + 1;
            var command = GpuCommand.Launch(Id, kernel, _device.FenceAddress(Id), value, GpuCommandFlags.Interrupt, arg0, arg1, arg2, arg3, arg4);
            var err = _device.Submit(command);
            if (err != Errno.Ok)
            {
                SetError(new GpuStatus(err == Errno.ENODEV ? GpuContextError.ContextInvalid : GpuContextError.DeviceReset, 0,
                    err == Errno.ENODEV ? "the GPU has been removed." : "the GPU's command ring stopped or the device is being reset; nothing was launched."));
                return new GpuFence(Id, last);
            }
            Interlocked.Exchange(ref _submitted, value);
            Interlocked.Increment(ref _launches);
            return new GpuFence(Id, value);
        }
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
            if (IsClosed)
                return Errno.EFAULT;        // closed meanwhile (the process is exiting)
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
        || _device.ResetGeneration != Volatile.Read(ref _resetSeen) || Interlocked.Read(ref _lostToReset) >= Interlocked.Read(ref _submitted);

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
        _kernel.MightSleep("GpuContext.Close");
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            // Closing on another thread (process exit, device removal): return when it is done, not before.
            _device.WaitEvent(this, static c => Volatile.Read(ref c._closeFinished) != 0);
            return;
        }
        // A launch or a reset recovery that passed its IsClosed check before ours finishes first.
        using (_launchLock.Scoped())
        {
        }
        var bar = _device.Bar;
        ulong block = ContextBlock(Id);
        if (!_device.IsQuiesced)
        {
            _device.CancelFaults(Id);
            bar.Write32(block + CtxControl, 0);
            // Everything submitted finishes (failed) once the device has seen VALID clear.
            _device.WaitEvent(this, static c => c.AllFencesDone());
        }
        _notifier.Remove();
        // Under the migration lock, which every fault resolution, fault-ahead and migration of this context holds
        // while it uses the page table: one running now finishes first, and every later one sees IsClosed and stops.
        using (_device.Migrator.Lock())
        {
            using (_ptLock.Scoped())
            {
                _zapped.Clear();
                _pt.Zap(0, Mm.TaskSize, _zapped);
                // Always, even with no leaf left: a walk still in flight may be reading the table pages freed below.
                _device.InvalidateTlb(Id, 0, Mm.TaskSize);
                UnmapZapped();
            }
            _pt.Destroy();
        }
        _device.ReleaseContextId(Id);
        Volatile.Write(ref _closeFinished, 1);
        _device.WakeEvents();
    }

    /// <inheritdoc />
    public override string ToString() => $"gpu context {Id} of {Process}";

    /// <summary>Counts a window mapped ahead of the device.</summary>
    internal void CountAhead() => Interlocked.Increment(ref _aheadWindows);

    /// <summary>Counts pages this context's own migrations moved.</summary>
    internal void CountMigrated(long toVram, long toSystem)
    {
        Interlocked.Add(ref _migratedToVram, toVram);
        Interlocked.Add(ref _migratedToSystem, toSystem);
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

    /// <summary>
    /// After a device reset (before the new <paramref name="generation"/> is published): unfinished work is lost
    /// (DeviceReset); an idle context is programmed again. Takes the launch lock, so a launch is either wholly before
    /// (and, if lost, seen here) or wholly after. May sleep.
    /// </summary>
    internal void AfterReset(int generation)
    {
        using (_launchLock.Scoped())
        {
            // Lost work: its fences will never be written. Recorded apart from the sticky error, which may already hold
            // an earlier failure (a cancelled fault) that DeviceReset does not replace, and for a closing context too
            // (its Close waits for those fences).
            ulong submitted = Interlocked.Read(ref _submitted);
            bool lost = _device.FenceValue(Id) < submitted;
            if (lost)
                Interlocked.Exchange(ref _lostToReset, submitted);
            if (IsClosed)
            {
                Volatile.Write(ref _resetSeen, generation);
                return;
            }
            if (lost)
                SetError(new GpuStatus(GpuContextError.DeviceReset, 0, "the GPU was reset while this context had work queued or running; that work is lost."));
            else if (Error.IsOk)
                Validate();
            Volatile.Write(ref _resetSeen, generation);
        }
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
