using HmmEmu.Kernel.Fs;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Vm;

/// <summary>
/// Page reclaim (the part of mm/vmscan.c and mm/rmap.c the simulation needs): the allocator's slow path takes
/// page-cache pages from the oldest end of the LRU, unmaps them from every address space that maps them (each
/// mapping after an MMU_NOTIFY_CLEAR invalidation, so mirroring devices drop them too), writes dirty ones back to
/// the file's disk and frees them. Anonymous memory has no swap here and is not reclaimed.
/// </summary>
/// <remarks>Runs in the allocating thread inside reclaim context (PF_MEMALLOC); takes page locks with trylock and
/// each file's i_mmap rwsem for reading. May sleep.</remarks>
public sealed class PageReclaim : IPageReclaimer
{
    private static readonly TraceEventType s_evictEvent = new("vmscan", "evict", "pfn", "file", "index");

    private readonly HostKernel _kernel;
    private long _reclaimed;

    internal PageReclaim(HostKernel kernel) => _kernel = kernel;

    /// <summary>How many pages reclaim has freed so far.</summary>
    public long Reclaimed => Interlocked.Read(ref _reclaimed);

    /// <summary>Runs reclaim now, as if an allocation were short of <paramref name="pages"/> pages (for tests). May sleep.</summary>
    public int ShrinkNow(int pages)
    {
        _kernel.MightAlloc(Gfp.Kernel);
        return Reclaim(pages);
    }

    /// <inheritdoc />
    public int Reclaim(int pages)
    {
        var mem = _kernel.Memory;
        Span<ulong> victims = stackalloc ulong[32];
        int freed = 0;
        int scans = 0;
        while (freed < pages && scans++ < 4)
        {
            int n = mem.LruScan(victims[..Math.Min(victims.Length, Math.Max(1, pages - freed))]);
            if (n == 0)
                break;
            foreach (ulong pfn in victims[..n])
            {
                if (TryReclaimPage(pfn))
                    freed++;
                mem.PutPage(pfn);        // the scan's reference
            }
        }
        Interlocked.Add(ref _reclaimed, freed);
        return freed;
    }

    private bool TryReclaimPage(ulong pfn)
    {
        var mem = _kernel.Memory;
        if (!mem.HasFlags(pfn, PageFlags.PageCache) || mem.Owner(pfn) is not SimFile file || file.IsShmem)
            return false;
        if (!mem.TryLockPage(pfn))
            return false;
        try
        {
            if (mem.MapCount(pfn) > 0)
                TryToUnmap(file, pfn);
            if (mem.MapCount(pfn) > 0 || !file.TryEvict(pfn))
                return false;
            _kernel.Scheduler.Charge(_kernel.Timing.ReclaimPageNs);
            _kernel.Trace.Record(s_evictEvent, pfn, (ulong)file.Id, mem.Index(pfn));
            return true;
        }
        finally
        {
            mem.UnlockPage(pfn);
        }
    }

    /// <summary>try_to_unmap: removes every mapping of a page-cache page. Caller holds the page lock.</summary>
    private static void TryToUnmap(SimFile file, ulong pfn)
    {
        ulong index = file.Kernel.Memory.Index(pfn);
        using (file.MmapSem.ScopedRead())
        {
            foreach (var vma in file.Mappings())
            {
                ulong first = vma.PgOff, count = vma.Length >> PhysicalMemory.PageShift;
                if (index < first || index - first >= count)
                    continue;
                ulong addr = vma.Start + ((index - first) << PhysicalMemory.PageShift);
                vma.Mm.UnmapPageForReclaim(vma, addr, pfn);
            }
        }
    }
}
