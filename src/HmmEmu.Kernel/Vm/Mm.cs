using HmmEmu.Annotations;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Vm;

/// <summary>
/// A process address space (struct mm_struct): its VMAs, its CPU page table, its notifier subscriptions and the
/// locks that guard them.
/// </summary>
/// <remarks>
/// Locking: <see cref="MmapLock"/> (a reader/writer semaphore) guards the VMA list: write to change it, read to
/// look at it or to fault. The page-table lock (a spinlock) guards page-table entries; hardware-style lockless
/// reads of entries are allowed. Every change that removes, replaces or takes access away from a present entry
/// happens inside an mmu-notifier invalidation of its address; the address space checks that about itself and
/// throws <see cref="KernelBugException"/> if any path forgets.
/// </remarks>
public sealed partial class Mm
{
    /// <summary>TASK_SIZE: one past the highest user address (47-bit user space).</summary>
    public const ulong TaskSize = 0x0000_7FFF_FFFF_F000;

    /// <summary>Where top-down placement of new mappings starts (mmap_base).</summary>
    public const ulong MmapBase = 0x0000_7F00_0000_0000;

    private const ulong PageSize = PhysicalMemory.PageSize;
    private const ulong PageMask = PhysicalMemory.PageMask;

    private static readonly TraceEventType s_faultEvent = new("mm", "fault", "mm", "addr", "flags");

    private readonly List<Vma> _vmas = [];
    private readonly Lock _activeLock = new();
    // Invalidations running on this address space: replaced whole under _activeLock, read without it (the
    // downgrade self-check runs on every page-table write).
    private (ulong Start, ulong End)[] _activeInvalidations = [];
    private int _users = 1;
    private int _count = 1;
    private int _exited;

    internal Mm(HostKernel kernel)
    {
        Kernel = kernel;
        Id = kernel.AllocateMmId();
        MmapLock = new KRwSemaphore(kernel, "mm.mmap_lock");
        PageTableLock = new KSpinLock(kernel, "mm.page_table_lock");
        Subscriptions = new MmuNotifierSubscriptions(this);
    }

    /// <summary>The kernel this address space belongs to.</summary>
    public HostKernel Kernel { get; }

    /// <summary>An identifier unique within the kernel (for traces and messages).</summary>
    public int Id { get; }

    /// <summary>mmap_lock: read to look up VMAs or fault, write to change VMAs.</summary>
    public KRwSemaphore MmapLock { get; }

    /// <summary>mm_users: how many users (the process, and drivers that called <see cref="MmGetNotZero"/>) keep the mappings alive.</summary>
    public int Users => Volatile.Read(ref _users);

    /// <summary>Whether exit_mmap has torn the address space down.</summary>
    public bool HasExited => Volatile.Read(ref _exited) != 0;

    /// <summary>The current notifier sequence of this address space (even when idle).</summary>
    public ulong NotifierSeq => Subscriptions.InvalidateSeq;

    /// <summary>How many interval notifiers are registered.</summary>
    public int NotifierCount => Subscriptions.NotifierCount;

    /// <summary>Invalidations started on this mm and not yet ended (0 at quiescence; a leak means an unpaired start).</summary>
    public long ActiveInvalidateRanges => Subscriptions.ActiveRanges;

    /// <summary>How many last-level page tables exist.</summary>
    public long PageTableCount => PageTable.TableCount;

    internal KSpinLock PageTableLock { get; }

    internal CpuPageTable PageTable { get; } = new();

    internal MmuNotifierSubscriptions Subscriptions { get; }

    /// <summary>Test hook: sees every page-table entry change (address, old, new), under the page-table lock.</summary>
    internal Action<ulong, Pte, Pte>? PteObserver { get; set; }

    /// <summary>Takes the mmap lock for reading for the scope of a <c>using</c>. May sleep.</summary>
    [MayBlock]
    [AcquiresLock(nameof(MmapLock))]
    public LockScope MmapReadLock() => MmapLock.ScopedRead();

    /// <summary>Takes the mmap lock for writing for the scope of a <c>using</c>. May sleep.</summary>
    [MayBlock]
    [AcquiresLock(nameof(MmapLock))]
    public LockScope MmapWriteLock() => MmapLock.ScopedWrite();

    /// <summary>mmget_not_zero: takes a user reference unless the address space is already exiting. Returns whether it did.</summary>
    [NonBlocking]
    [RefGet]
    public bool MmGetNotZero()
    {
        while (true)
        {
            int u = Volatile.Read(ref _users);
            if (u <= 0)
                return false;
            if (Interlocked.CompareExchange(ref _users, u + 1, u) == u)
                return true;
        }
    }

    /// <summary>mmput: drops a user reference; the last one tears the address space down (exit_mmap). May sleep.</summary>
    [MayInvalidate]
    [RefPut]
    public void MmPut()
    {
        Kernel.MightSleep("mmput");
        int u = Interlocked.Decrement(ref _users);
        if (u < 0)
            throw new KernelRuleViolationException($"mmput on mm {Id} dropped mm_users below zero: a reference was put twice. Pair every MmGetNotZero with one MmPut.");
        if (u == 0)
        {
            ExitMmap();
            MmDrop();
        }
    }

    internal void MmGrab() => Interlocked.Increment(ref _count);

    internal void MmDrop()
    {
        if (Interlocked.Decrement(ref _count) < 0)
            throw new KernelBugException($"mmdrop on mm {Id} dropped mm_count below zero.");
    }

    /// <summary>find_vma: the first VMA that ends above <paramref name="addr"/>, or null. Caller holds the mmap lock.</summary>
    public Vma? FindVma(ulong addr)
    {
        MmapLock.AssertHeld("find_vma");
        int i = FindIndex(addr);
        return i < _vmas.Count ? _vmas[i] : null;
    }

    /// <summary>vma_lookup: the VMA containing <paramref name="addr"/>, or null. Caller holds the mmap lock.</summary>
    public Vma? VmaLookup(ulong addr)
    {
        var v = FindVma(addr);
        return v is not null && v.Start <= addr ? v : null;
    }

    /// <summary>A copy of the VMA list in address order. Caller holds the mmap lock.</summary>
    public IReadOnlyList<Vma> Vmas()
    {
        MmapLock.AssertHeld("Mm.Vmas");
        return [.. _vmas];
    }

    /// <summary>Reads the CPU page-table entry for <paramref name="addr"/> (lockless, like the hardware walker).</summary>
    public Pte GetPte(ulong addr) => PageTable.Get(addr & PageMask);

    // Index of the first VMA whose End > addr.
    private int FindIndex(ulong addr)
    {
        int lo = 0, hi = _vmas.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_vmas[mid].End <= addr)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    /// <summary>
    /// Writes one page-table entry. Caller holds the page-table lock (or owns a not-yet-visible address space), and
    /// has started an invalidation covering <paramref name="addr"/> if the change takes anything away.
    /// </summary>
    internal void SetPte(PteTable table, ulong addr, Pte next)
    {
        int i = CpuPageTable.PteIndex(addr);
        var old = new Pte(table.Entries[i]);
        // A huge block changes as a whole (every entry replaced by a huge one, as a PMD is) or is split first.
        if (old.IsHuge && !next.IsHuge)
            SplitHuge(table);
        if (old.IsDowngradedBy(next) && !IsInvalidating(addr))
        {
            throw new KernelBugException(
                $"mm {Id}: the entry for 0x{addr:x} changes from {old} to {next} without an mmu-notifier invalidation " +
                "covering it; devices mirroring this address would keep a stale translation.");
        }
        if (old.IsNone != next.IsNone)
            table.Used += next.IsNone ? -1 : 1;
        Volatile.Write(ref table.Entries[i], next.Raw);
        PteObserver?.Invoke(addr, old, next);
    }

    /// <summary>
    /// split_huge_pmd: a huge block becomes 512 ordinary entries for the same frames and access, so that part of
    /// it can change. Caller holds the page-table lock.
    /// </summary>
    private static void SplitHuge(PteTable table)
    {
        for (int j = 0; j < PteTable.Count; j++)
        {
            var e = new Pte(table.Entries[j]);
            if (e.IsHuge)
                Volatile.Write(ref table.Entries[j], e.WithoutHuge().Raw);
        }
    }

    /// <summary>Splits the huge block containing <paramref name="addr"/>, if any. Caller holds the mmap write lock.</summary>
    private void SplitHugeAt(ulong addr)
    {
        if (PageTable.Find(addr, out _) is { } t && t.Get(CpuPageTable.PteIndex(addr)).IsHuge)
        {
            using (PageTableLock.Scoped())
                SplitHuge(t);
        }
    }

    private bool IsInvalidating(ulong addr)
    {
        foreach (var (start, end) in Volatile.Read(ref _activeInvalidations))
        {
            if (addr >= start && addr < end)
                return true;
        }
        return false;
    }

    private void AddActive(ulong start, ulong end)
    {
        lock (_activeLock)
            Volatile.Write(ref _activeInvalidations, [.. _activeInvalidations, (start, end)]);
    }

    /// <summary>
    /// mmu_notifier_invalidate_range_start: tells every overlapping notifier that [<paramref name="start"/>,
    /// <paramref name="end"/>) is about to change, and waits for their callbacks. May sleep. End it with
    /// <see cref="InvalidateRangeEnd"/>.
    /// </summary>
    internal MmuNotifierRange InvalidateRangeStart(NotifierEvent ev, ulong start, ulong end, object? owner = null)
    {
        var task = TaskContext.For(Kernel);
        Kernel.Lockdep.MightSleep(task, "mmu_notifier_invalidate_range_start");
        var range = new MmuNotifierRange(this, ev, start, end, owner);
        AddActive(start, end);
        Kernel.Lockdep.MapAcquire(task, Kernel.Lockdep.InvalidateRangeStart);
        try
        {
            Subscriptions.Invalidate(range);
        }
        catch
        {
            RemoveActive(start, end);
            throw;
        }
        finally
        {
            Kernel.Lockdep.MapRelease(task, Kernel.Lockdep.InvalidateRangeStart);
        }
        return range;
    }

    /// <summary>
    /// mmu_notifier_invalidate_range_start_nonblock: like <see cref="InvalidateRangeStart"/> but callbacks must not
    /// sleep; returns EAGAIN (and ends nothing, changes nothing) when one refuses.
    /// </summary>
    internal Errno InvalidateRangeStartNonBlock(NotifierEvent ev, ulong start, ulong end, out MmuNotifierRange range)
    {
        var task = TaskContext.For(Kernel);
        range = new MmuNotifierRange(this, ev, start, end, blockable: false);
        AddActive(start, end);
        Errno err;
        Kernel.Lockdep.MapAcquire(task, Kernel.Lockdep.InvalidateRangeStart);
        try
        {
            err = Subscriptions.Invalidate(range);
        }
        catch
        {
            RemoveActive(start, end);
            throw;
        }
        finally
        {
            Kernel.Lockdep.MapRelease(task, Kernel.Lockdep.InvalidateRangeStart);
        }
        if (err != Errno.Ok)
            RemoveActive(start, end);
        return err;
    }

    /// <summary>mmu_notifier_invalidate_range_end. May sleep if the range was blockable.</summary>
    internal void InvalidateRangeEnd(in MmuNotifierRange range)
    {
        var task = TaskContext.For(Kernel);
        if (range.Blockable)
            Kernel.Lockdep.MightSleep(task, "mmu_notifier_invalidate_range_end");
        Kernel.Lockdep.MapAcquire(task, Kernel.Lockdep.InvalidateRangeStart);
        try
        {
            Subscriptions.InvalidateEnd();
        }
        finally
        {
            Kernel.Lockdep.MapRelease(task, Kernel.Lockdep.InvalidateRangeStart);
        }
        RemoveActive(range.Start, range.End);
    }

    /// <summary>
    /// For the <see cref="KernelMutant"/>s that skip an invalidation: lets [<paramref name="start"/>,
    /// <paramref name="end"/>) change as if one covered it, telling no notifier. This keeps the address space's own
    /// check in <see cref="SetPte"/> (which Linux does not have) quiet, so that the coherence suite, not that check,
    /// has to catch the bug. End it with <see cref="EndMutantSilentRange"/>.
    /// </summary>
    private void StartMutantSilentRange(ulong start, ulong end) => AddActive(start, end);

    /// <summary>Ends what <see cref="StartMutantSilentRange"/> started.</summary>
    private void EndMutantSilentRange(ulong start, ulong end) => RemoveActive(start, end);

    private void RemoveActive(ulong start, ulong end)
    {
        lock (_activeLock)
        {
            var list = _activeInvalidations;
            int i = Array.LastIndexOf(list, (start, end));
            if (i < 0)
                throw new KernelBugException($"mm {Id}: invalidation [0x{start:x}, 0x{end:x}) ended twice.");
            Volatile.Write(ref _activeInvalidations, [.. list.AsSpan(0, i), .. list.AsSpan(i + 1)]);
        }
    }

    /// <summary>Checks the VMA list invariants (sorted, non-overlapping, page aligned, inside user space). For tests.</summary>
    public void AssertInvariants()
    {
        using (MmapReadLock())
        {
            ulong prevEnd = 0;
            foreach (var v in _vmas)
            {
                if (v.Start < prevEnd || v.End <= v.Start || (v.Start & ~PageMask) != 0 || (v.End & ~PageMask) != 0 || v.End > TaskSize)
                    throw new KernelBugException($"mm {Id}: bad VMA {v} after one ending at 0x{prevEnd:x}.");
                prevEnd = v.End;
            }
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"mm {Id}";
}
