using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Gpu.Driver;

// The invalidate path: the interval notifier callback and the driver's own zaps (zap, TLB invalidate and wait, DMA unmap).
public sealed partial class GpuContext
{
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
        if (range.Event == NotifierEvent.Migrate && ReferenceEquals(range.Owner, _device) && _device.Migrator.InOwnMigrationToVram(this))
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
                NoteUnmapLocked(range);
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
            NoteUnmapLocked(range);
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

    // munmap ends the migration and fault history of the windows it covers (see ForgetUnmappedWindows): remember the
    // range for the fault work queue, which owns that history. Caller holds _ptLock; never sleeps.
    private void NoteUnmapLocked(in MmuNotifierRange range)
    {
        if (range.Event != NotifierEvent.Unmap)
            return;
        if (_unmapped.Count < MaxPendingUnmaps)
            _unmapped.Add((range.Start, range.End));
        else
            _unmappedOverflow = true;
        Volatile.Write(ref _unmappedPending, 1);
    }

    // How many unmapped ranges wait for the fault path before it simply forgets every window's history.
    private const int MaxPendingUnmaps = 64;

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

    // Drops the DMA mappings of the leaves just zapped. Caller holds _ptLock, after the TLB invalidation completed.
    [HmmEmu.Annotations.DmaUnmap]
    private void UnmapZapped()
    {
        foreach (ulong bus in _zapped)
            _device.Pci.DmaUnmapPage(bus);
        _zapped.Clear();
    }
}
