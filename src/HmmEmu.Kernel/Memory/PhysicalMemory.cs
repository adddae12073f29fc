using System.Runtime.CompilerServices;
using HmmEmu.Annotations;
using HmmEmu.Kernel.Locking;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Memory;

/// <summary>
/// Physical memory: 4 KiB frames numbered by pfn, their metadata (struct page) in chunks of 512 frames, and their
/// bytes in 2 MiB slabs, both allocated on first touch (so a large, mostly unused RAM costs little). Frame 0 is
/// the shared zero page. The allocator's slow path runs direct reclaim, which can invalidate device mappings.
/// </summary>
public sealed class PhysicalMemory
{
    /// <summary>log2 of the page size.</summary>
    public const int PageShift = 12;

    /// <summary>The page size in bytes.</summary>
    public const int PageSize = 1 << PageShift;

    /// <summary>Mask that clears the offset within a page.</summary>
    public const ulong PageMask = ~(ulong)(PageSize - 1);

    /// <summary>The pfn of the shared zero page.</summary>
    public const ulong ZeroPfn = 0;

    private const int SlabShift = 9; // 512 pages = 2 MiB per slab
    private const int SlabPages = 1 << SlabShift;
    private const int ReclaimBatch = 32;
    private const int MaxReclaimRounds = 4;

    private static readonly TraceEventType s_oomEvent = new("mm", "alloc_fail", "gfp", "free");
    private static readonly TraceEventType s_reclaimEvent = new("mm", "direct_reclaim", "freed", "free");

    private readonly HostKernel _kernel;
    private readonly Lock _zoneLock = new();
    // struct page for every pfn (RAM, then device memory), in chunks of SlabPages allocated on first touch: a
    // machine with 256 MiB of RAM and 1 GiB of device pfns boots without writing metadata for frames it never uses.
    private readonly Frame[]?[] _frames;
    private readonly byte[]?[] _slabs;
    // The free list is the stack of freed frames (most recently freed on top) over the never-allocated frames from
    // _nextFresh up, taken in ascending order. The stack may hold stale entries (see Frame.InStack).
    private int[] _freeStack = new int[64];
    private int _stackTop;
    private int _nextFresh = 1;
    // The reclaim list is circular and doubly linked through the frames, with this sentinel (index TotalPages).
    private int _lruSentinelPrev;
    private int _lruSentinelNext;
    private readonly SimWaitQueue _pageLockWait;
    private readonly int _reserve;
    private readonly int _metaCount;
    private IDevicePageRegion[] _regions = [];   // replaced whole under _zoneLock; read without it
    private int _nextDevicePfn;
    private int _freeCount;
    private int _lruCount;

    internal PhysicalMemory(HostKernel kernel, ulong ramBytes, int devicePages = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(devicePages);
        if (ramBytes < 64 * PageSize || ramBytes % PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(ramBytes), ramBytes, "RAM must be a whole number of pages, at least 64 pages.");
        if (ramBytes / PageSize > int.MaxValue - 1)
            throw new ArgumentOutOfRangeException(nameof(ramBytes), ramBytes, "RAM is limited to 2^31 - 2 pages (8 TiB).");
        _kernel = kernel;
        int n = (int)(ramBytes / PageSize);
        TotalPages = (ulong)n;
        // Device memory (ZONE_DEVICE) gets pfns after RAM, with the same per-page metadata.
        int all = checked(n + devicePages);
        _metaCount = all;
        _nextDevicePfn = n;
        _frames = new Frame[]?[(all + SlabPages - 1) >> SlabShift];
        _slabs = new byte[]?[(all + SlabPages - 1) >> SlabShift];
        _lruSentinelPrev = _lruSentinelNext = n;
        _reserve = Math.Max(8, Math.Min(256, n / 128));
        _pageLockWait = new SimWaitQueue(kernel.Scheduler, "page lock");
        // Every RAM frame but the zero page starts free (see NewChunk); allocation hands them out in ascending order.
        _freeCount = n - 1;
    }

    // struct page: the metadata of one frame.
    private struct Frame
    {
        public int Refcount;
        public int Mapcount;
        public uint Flags;
        public int LruPrev;
        public int LruNext;
        public bool InStack;    // the frame has an entry in _freeStack (then it is not pushed again)
        public ulong Index;
        public object? Owner;
    }

    /// <summary>Number of RAM frames, including the zero page.</summary>
    public ulong TotalPages { get; }

    /// <summary>Number of free frames.</summary>
    public ulong FreePages => (ulong)Volatile.Read(ref _freeCount);

    /// <summary>RAM frames in use (allocated and not yet freed), not counting the zero page.</summary>
    public ulong UsedPages => TotalPages - 1 - FreePages;

    /// <summary>Number of pages on the reclaim list.</summary>
    public int LruPages => Volatile.Read(ref _lruCount);

    /// <summary>How many allocations failed with ENOMEM.</summary>
    public long FailedAllocations => Interlocked.Read(ref _failedAllocations);

    private long _failedAllocations;

    internal IPageReclaimer? Reclaimer { get; set; }

    /// <summary>Whether <paramref name="pfn"/> names a RAM frame.</summary>
    public bool IsValidPfn(ulong pfn) => pfn < TotalPages;

    /// <summary>
    /// Allocates one page (alloc_page). The page comes back with a reference count of one, owned by the caller.
    /// With <see cref="Gfp.DirectReclaim"/> it may sleep and reclaim; the lock checker treats it as such even when
    /// memory is plentiful. Returns <see cref="Errno.ENOMEM"/> when no page can be found.
    /// </summary>
    [MayReclaim(FlagsParameter = nameof(gfp), ReclaimFlags = (long)Gfp.DirectReclaim)]
    public Errno AllocPage(Gfp gfp, out ulong pfn)
    {
        var task = TaskContext.For(_kernel);
        _kernel.MightAlloc(task, gfp);
        for (int round = 0; ; round++)
        {
            if (TryTakeFree((gfp & Gfp.HighPriority) != 0, out pfn))
            {
                if ((gfp & Gfp.Zero) != 0)
                    ClearPage(pfn);
                return Errno.Ok;
            }
            if ((gfp & Gfp.DirectReclaim) == 0 || task.ReclaimDepth > 0 || Reclaimer is null || round >= MaxReclaimRounds)
                break;
            int freed = DirectReclaim(task, gfp);
            if (freed == 0 && round > 0)
                break;
        }
        Interlocked.Increment(ref _failedAllocations);
        _kernel.Trace.Record(s_oomEvent, (ulong)gfp, FreePages);
        pfn = 0;
        return Errno.ENOMEM;
    }

    /// <summary>
    /// Allocates 2^<paramref name="order"/> physically contiguous, naturally aligned frames (alloc_pages with an
    /// order), each returned with one reference. Used for 2 MiB huge pages. May sleep and reclaim like
    /// <see cref="AllocPage"/>; ENOMEM when no aligned run of free frames exists.
    /// </summary>
    [MayReclaim(FlagsParameter = nameof(gfp), ReclaimFlags = (long)Gfp.DirectReclaim)]
    public Errno AllocContiguous(int order, Gfp gfp, out ulong firstPfn)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(order, 18);
        var task = TaskContext.For(_kernel);
        _kernel.MightAlloc(task, gfp);
        int count = 1 << order;
        for (int round = 0; ; round++)
        {
            if (TryTakeContiguous(count, (gfp & Gfp.HighPriority) != 0, out firstPfn))
            {
                if ((gfp & Gfp.Zero) != 0)
                {
                    for (int i = 0; i < count; i++)
                        ClearPage(firstPfn + (ulong)i);
                }
                return Errno.Ok;
            }
            if ((gfp & Gfp.DirectReclaim) == 0 || task.ReclaimDepth > 0 || Reclaimer is null || round >= MaxReclaimRounds)
                break;
            if (DirectReclaim(task, gfp) == 0 && round > 0)
                break;
        }
        Interlocked.Increment(ref _failedAllocations);
        firstPfn = 0;
        return Errno.ENOMEM;
    }

    private bool TryTakeContiguous(int count, bool mayUseReserve, out ulong first)
    {
        lock (_zoneLock)
        {
            int floor = mayUseReserve ? 0 : _reserve;
            int n = (int)TotalPages;
            // Block 0 holds the zero page; scan aligned blocks in ascending order (deterministic first fit).
            for (int b = count; _freeCount - count >= floor && b + count <= n; b += count)
            {
                bool free = true;
                for (int j = b; j < b + count && free; j++)
                    free = (M(j).Flags & (uint)PageFlags.Free) != 0;
                if (!free)
                    continue;
                // The frames' entries stay in the free stack; single-page allocation skips them (lazy removal).
                _freeCount -= count;
                for (int j = b; j < b + count; j++)
                {
                    M(j).Flags = 0;
                    M(j).Refcount = 1;
                    M(j).Mapcount = 0;
                    M(j).Owner = null;
                    M(j).Index = 0;
                }
                first = (ulong)b;
                return true;
            }
        }
        first = 0;
        return false;
    }

    /// <summary>get_page_unless_zero: takes a reference unless the page is already free. Returns whether it did.</summary>
    public bool TryGetPage(ulong pfn) => pfn == ZeroPfn || TryGetRef(CheckPfn(pfn));

    private bool TryGetRef(int i)
    {
        while (true)
        {
            int r = Volatile.Read(ref M(i).Refcount);
            if (r <= 0)
                return false;
            if (Interlocked.CompareExchange(ref M(i).Refcount, r + 1, r) == r)
                return true;
        }
    }

    /// <summary>Takes a reference on a page (get_page).</summary>
    public void GetPage(ulong pfn)
    {
        if (pfn == ZeroPfn)
            return;
        int r = Interlocked.Increment(ref M(CheckPfn(pfn)).Refcount);
        if (r <= 1)
            throw new KernelBugException($"get_page on pfn 0x{pfn:x} whose reference count was {r - 1}: the page was already free.");
    }

    /// <summary>Drops a reference on a page (put_page); the last reference frees it.</summary>
    public void PutPage(ulong pfn)
    {
        if (pfn == ZeroPfn)
            return;
        int i = CheckPfn(pfn);
        int r = Interlocked.Decrement(ref M(i).Refcount);
        if (r < 0)
            throw new KernelBugException($"put_page on pfn 0x{pfn:x} dropped its reference count below zero.");
        if (r == 0)
        {
            if ((ulong)i >= TotalPages)
                FreeDevicePage(pfn);
            else
                FreeFrame(i);
        }
    }

    /// <summary>The page's reference count (page_ref_count).</summary>
    public int RefCount(ulong pfn) => Volatile.Read(ref M(CheckPfn(pfn)).Refcount);

    /// <summary>How many page-table entries map the page (page_mapcount).</summary>
    public int MapCount(ulong pfn) => Volatile.Read(ref M(CheckPfn(pfn)).Mapcount);

    /// <summary>The page's flags.</summary>
    public PageFlags Flags(ulong pfn) => (PageFlags)Volatile.Read(ref M(CheckPfn(pfn)).Flags);

    /// <summary>Whether the page has every flag in <paramref name="flags"/>.</summary>
    public bool HasFlags(ulong pfn, PageFlags flags) => (Flags(pfn) & flags) == flags;

    /// <summary>Sets flags on the page (atomically).</summary>
    public void SetFlags(ulong pfn, PageFlags flags) => Interlocked.Or(ref M(CheckPfn(pfn)).Flags, (uint)flags);

    /// <summary>Clears flags on the page (atomically).</summary>
    public void ClearFlags(ulong pfn, PageFlags flags) => Interlocked.And(ref M(CheckPfn(pfn)).Flags, ~(uint)flags);

    /// <summary>The object that owns the page: the address space of an anonymous page, the file of a page-cache page.</summary>
    public object? Owner(ulong pfn) => Volatile.Read(ref M(CheckPfn(pfn)).Owner);

    /// <summary>The page's index within its owner: virtual page number (anon) or file page number (page cache).</summary>
    public ulong Index(ulong pfn) => Volatile.Read(ref M(CheckPfn(pfn)).Index);

    /// <summary>The page's 4 KiB of bytes. The span stays valid for the life of the machine; the frame's owner decides who may touch it.</summary>
    public Span<byte> PageBytes(ulong pfn)
    {
        int i = CheckPfn(pfn);
        if ((ulong)i >= TotalPages && RegionOf(pfn) is { CpuAccessible: false } region)
        {
            throw new KernelRuleViolationException(
                $"The CPU touched pfn 0x{pfn:x}, a page of device-private memory ({region}). Device-private memory is not " +
                "CPU-addressable: migrate the page to system memory first, or let the device copy it.");
        }
        return Slab(i).AsSpan((i & (SlabPages - 1)) << PageShift, PageSize);
    }

    /// <summary>
    /// The bytes of <paramref name="pages"/> consecutive RAM frames from <paramref name="pfn"/> as one span, for
    /// buffers both sides see as contiguous (coherent DMA memory). The frames must lie in one 2 MiB backing block,
    /// as a naturally aligned allocation of at most 512 pages does.
    /// </summary>
    public Span<byte> ContiguousBytes(ulong pfn, int pages)
    {
        int i = CheckPfn(pfn);
        if (pages <= 0 || (ulong)i >= TotalPages || (i & (SlabPages - 1)) + pages > SlabPages)
        {
            throw new ArgumentOutOfRangeException(nameof(pages),
                $"{pages} frames from pfn 0x{pfn:x} do not lie in one 2 MiB block of RAM; allocate them naturally aligned (AllocContiguous).");
        }
        return Slab(i).AsSpan((i & (SlabPages - 1)) << PageShift, pages << PageShift);
    }

    /// <summary>
    /// Reports a device access to a free frame (a use after free that an IOMMU would have stopped): a kernel WARN
    /// naming the frame and the rule. For bus ports that watch their targets; never sleeps.
    /// </summary>
    public void ReportAccessToFreeFrame(ulong pfn, bool write) =>
        _kernel.Warn($"DMA {(write ? "write to" : "read of")} free frame 0x{pfn:x}: a device still uses a translation of a page the kernel freed " +
            "(INV-11: a frame is freed only after every device mapping of it is invalidated and flushed)");

    /// <summary>Copies a whole page (copy_highpage).</summary>
    public void CopyPage(ulong dstPfn, ulong srcPfn) => PageBytes(srcPfn).CopyTo(PageBytes(dstPfn));

    /// <summary>Zero-fills a page (clear_highpage).</summary>
    public void ClearPage(ulong pfn)
    {
        int i = CheckPfn(pfn);
        var slab = Volatile.Read(ref _slabs[i >> SlabShift]);
        if (slab is null)
            return; // never touched: still zero
        slab.AsSpan((i & (SlabPages - 1)) << PageShift, PageSize).Clear();
    }

    /// <summary>Takes the page lock if it is free (folio_trylock).</summary>
    [NonBlocking]
    public bool TryLockPage(ulong pfn)
    {
        int i = CheckPfn(pfn);
        return (Interlocked.Or(ref M(i).Flags, (uint)PageFlags.Locked) & (uint)PageFlags.Locked) == 0;
    }

    /// <summary>Takes the page lock, sleeping while it is held (folio_lock). May sleep.</summary>
    [MayBlock]
    public void LockPage(ulong pfn)
    {
        _kernel.Lockdep.MightSleep(TaskContext.For(_kernel), "folio_lock");
        if (!TryLockPage(pfn))
            _pageLockWait.WaitUntil((this, pfn), static s => s.Item1.TryLockPage(s.pfn));
    }

    /// <summary>Releases the page lock (folio_unlock).</summary>
    public void UnlockPage(ulong pfn)
    {
        int i = CheckPfn(pfn);
        uint old = Interlocked.And(ref M(i).Flags, ~(uint)PageFlags.Locked);
        if ((old & (uint)PageFlags.Locked) == 0)
            throw new KernelRuleViolationException($"folio_unlock on pfn 0x{pfn:x}, which is not locked.");
        _pageLockWait.WakeAll();
    }

    internal void SetOwner(ulong pfn, object? owner, ulong index)
    {
        int i = CheckPfn(pfn);
        Volatile.Write(ref M(i).Owner, owner);
        Volatile.Write(ref M(i).Index, index);
    }

    internal void IncMapCount(ulong pfn)
    {
        if (pfn != ZeroPfn)
            Interlocked.Increment(ref M(CheckPfn(pfn)).Mapcount);
    }

    internal void DecMapCount(ulong pfn)
    {
        if (pfn == ZeroPfn)
            return;
        if (Interlocked.Decrement(ref M(CheckPfn(pfn)).Mapcount) < 0)
            throw new KernelBugException($"mapcount of pfn 0x{pfn:x} went negative.");
    }

    /// <summary>Adds a page to the tail (newest end) of the reclaim list.</summary>
    internal void LruAdd(ulong pfn)
    {
        int i = CheckPfn(pfn);
        lock (_zoneLock)
        {
            if ((M(i).Flags & (uint)PageFlags.Lru) == 0)
                LruAddTailLocked(i);
        }
    }

    private void LruAddTailLocked(int i)
    {
        int sentinel = (int)TotalPages;
        int tail = LruPrev(sentinel);
        LruNext(tail) = i;
        LruPrev(i) = tail;
        LruNext(i) = sentinel;
        LruPrev(sentinel) = i;
        Interlocked.Or(ref M(i).Flags, (uint)PageFlags.Lru);
        _lruCount++;
    }

    /// <summary>Removes a page from the reclaim list if it is on it.</summary>
    internal void LruRemove(ulong pfn)
    {
        int i = CheckPfn(pfn);
        lock (_zoneLock)
            LruRemoveLocked(i);
    }

    /// <summary>
    /// Takes up to <c>victims.Length</c> pages from the head (oldest end) of the reclaim list, moving each to the
    /// tail, and returns them with a reference held. Used by reclaim to choose victims in a fixed order.
    /// </summary>
    internal int LruScan(Span<ulong> victims)
    {
        int taken = 0;
        lock (_zoneLock)
        {
            int sentinel = (int)TotalPages;
            int budget = _lruCount;
            while (taken < victims.Length && budget-- > 0)
            {
                int i = LruNext(sentinel);
                if (i == sentinel)
                    break;
                // Rotate to the tail so the next scan starts with other pages.
                LruRemoveLocked(i);
                LruAddTailLocked(i);
                if (!TryGetRef(i))
                    continue;
                victims[taken++] = (ulong)i;
            }
        }
        return taken;
    }

    private void LruRemoveLocked(int i)
    {
        if ((M(i).Flags & (uint)PageFlags.Lru) == 0)
            return;
        int p = LruPrev(i), n = LruNext(i);
        LruNext(p) = n;
        LruPrev(n) = p;
        Interlocked.And(ref M(i).Flags, ~(uint)PageFlags.Lru);
        _lruCount--;
    }

    private int DirectReclaim(TaskContext task, Gfp gfp)
    {
        task.ReclaimDepth++;
        bool fs = (gfp & Gfp.Fs) != 0;
        if (fs)
            _kernel.Lockdep.MapAcquire(task, _kernel.Lockdep.FsReclaim);
        int freed;
        try
        {
            freed = Reclaimer!.Reclaim(ReclaimBatch);
        }
        finally
        {
            if (fs)
                _kernel.Lockdep.MapRelease(task, _kernel.Lockdep.FsReclaim);
            task.ReclaimDepth--;
        }
        _kernel.Trace.Record(s_reclaimEvent, (ulong)freed, FreePages);
        return freed;
    }

    private bool TryTakeFree(bool mayUseReserve, out ulong pfn)
    {
        lock (_zoneLock)
        {
            int floor = mayUseReserve ? 0 : _reserve;
            if (_freeCount <= floor)
            {
                pfn = 0;
                return false;
            }
            int i;
            do
            {
                if (_stackTop > 0)
                {
                    i = _freeStack[--_stackTop];
                    M(i).InStack = false;
                }
                else
                {
                    i = _nextFresh++;
                }
            }
            while ((M(i).Flags & (uint)PageFlags.Free) == 0);   // a stale entry: a contiguous allocation took the frame
            _freeCount--;
            M(i).Flags = 0;
            M(i).Refcount = 1;
            M(i).Mapcount = 0;
            M(i).Owner = null;
            M(i).Index = 0;
            pfn = (ulong)i;
            return true;
        }
    }

    private void FreeFrame(int i)
    {
        if (Volatile.Read(ref M(i).Mapcount) != 0)
            throw new KernelBugException($"pfn 0x{i:x} freed while still mapped {M(i).Mapcount} time(s).");
        lock (_zoneLock)
        {
            LruRemoveLocked(i);
            if ((M(i).Flags & (uint)PageFlags.Free) != 0)
                throw new KernelBugException($"pfn 0x{i:x} freed twice.");
            M(i).Flags = (uint)PageFlags.Free;
            M(i).Owner = null;
            _freeCount++;
            // A frame at or above _nextFresh is still in the never-allocated part of the free list.
            if (!M(i).InStack && i < _nextFresh)
            {
                if (_stackTop == _freeStack.Length)
                    Array.Resize(ref _freeStack, _freeStack.Length * 2);
                _freeStack[_stackTop++] = i;
                M(i).InStack = true;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref Frame M(int pfn)
    {
        var chunk = Volatile.Read(ref _frames[pfn >> SlabShift]) ?? NewChunk(pfn >> SlabShift);
        return ref chunk[pfn & (SlabPages - 1)];
    }

    private Frame[] NewChunk(int c)
    {
        var fresh = new Frame[SlabPages];
        int first = c << SlabShift;
        for (int j = 0; j < SlabPages; j++)
        {
            if ((ulong)(first + j) < TotalPages)
                fresh[j].Flags = (uint)PageFlags.Free;
        }
        if (c == 0)
        {
            fresh[ZeroPfn].Flags = (uint)(PageFlags.Reserved | PageFlags.Uptodate);
            fresh[ZeroPfn].Refcount = 1;
        }
        return Interlocked.CompareExchange(ref _frames[c], fresh, null) ?? fresh;
    }

    private ref int LruPrev(int i) => ref i == (int)TotalPages ? ref _lruSentinelPrev : ref M(i).LruPrev;

    private ref int LruNext(int i) => ref i == (int)TotalPages ? ref _lruSentinelNext : ref M(i).LruNext;

    private byte[] Slab(int i)
    {
        ref byte[]? slot = ref _slabs[i >> SlabShift];
        var slab = Volatile.Read(ref slot);
        if (slab is not null)
            return slab;
        var fresh = new byte[SlabPages << PageShift];
        return Interlocked.CompareExchange(ref slot, fresh, null) ?? fresh;
    }

    /// <summary>Whether <paramref name="pfn"/> is a page of registered device memory.</summary>
    public bool IsDevicePage(ulong pfn) => pfn >= TotalPages && pfn < (ulong)Volatile.Read(ref _nextDevicePfn);

    /// <summary>Reserves <paramref name="pages"/> pfns of device memory for <paramref name="region"/> (memremap_pages). Returns the first pfn.</summary>
    internal ulong ReserveDeviceRange(int pages, IDevicePageRegion region)
    {
        lock (_zoneLock)
        {
            if (pages <= 0 || _nextDevicePfn + (long)pages > _metaCount)
            {
                throw new InvalidOperationException(
                    $"Cannot register {pages} pages of device memory: {_metaCount - _nextDevicePfn} device pfns are left. " +
                    "Raise KernelOptions.DevicePages.");
            }
            ulong first = (ulong)_nextDevicePfn;
            Volatile.Write(ref _regions, [.. _regions, region]);
            Volatile.Write(ref _nextDevicePfn, _nextDevicePfn + pages);
            return first;
        }
    }

    /// <summary>The device-memory region holding <paramref name="pfn"/>, or null for RAM.</summary>
    internal IDevicePageRegion? RegionOf(ulong pfn)
    {
        if (!IsDevicePage(pfn))
            return null;
        foreach (var r in Volatile.Read(ref _regions))
        {
            // FirstPfn is still 0 while a region is being registered: such a region matches nothing yet.
            if (r.FirstPfn >= TotalPages && pfn >= r.FirstPfn && pfn < r.FirstPfn + (ulong)r.PageCount)
                return r;
        }
        return null;
    }

    /// <summary>zone_device_page_init: hands a free device page to its driver with one reference, locked.</summary>
    internal void InitDevicePage(ulong pfn)
    {
        int i = CheckPfn(pfn);
        if (Interlocked.CompareExchange(ref M(i).Refcount, 1, 0) != 0)
            throw new KernelBugException($"device page 0x{pfn:x} handed out while still referenced ({M(i).Refcount}).");
        Volatile.Write(ref M(i).Mapcount, 0);
        Volatile.Write(ref M(i).Flags, (uint)PageFlags.Locked);
        Volatile.Write(ref M(i).Owner, null);
    }

    private void FreeDevicePage(ulong pfn)
    {
        int i = (int)pfn;
        if (Volatile.Read(ref M(i).Mapcount) != 0)
            throw new KernelBugException($"device pfn 0x{pfn:x} freed while still mapped {M(i).Mapcount} time(s).");
        Volatile.Write(ref M(i).Flags, (uint)PageFlags.Free);
        Volatile.Write(ref M(i).Owner, null);
        (RegionOf(pfn) ?? throw new KernelBugException($"device pfn 0x{pfn:x} has no region")).PageFree(pfn);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int CheckPfn(ulong pfn)
    {
        if (pfn >= (ulong)_metaCount)
            throw new ArgumentOutOfRangeException(nameof(pfn), $"pfn 0x{pfn:x} is outside RAM (0..0x{TotalPages - 1:x}) and device memory.");
        return (int)pfn;
    }
}
