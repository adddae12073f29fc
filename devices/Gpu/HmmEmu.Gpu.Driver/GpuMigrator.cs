using HmmEmu.Annotations;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Gpu.Driver;

/// <summary>
/// Moves pages between system memory and VRAM with the copy engine: to VRAM on prefetch and after repeated faults,
/// back on prefetch, on a CPU touch (<see cref="MigrateToRam"/>) and when VRAM is full (eviction of the least recently
/// used 2 MiB block).
/// </summary>
/// <remarks>
/// <para>Lock order: <c>_lock</c> (mutex: one driver-initiated migration or fault group at a time) → the mmap lock →
/// a context's page-table lock → the TLB-invalidation lock; the copy engine's lock is a leaf. <see cref="MigrateToRam"/>
/// is called by the kernel with the mmap lock held, so it never takes <c>_lock</c>; the kernel's page locks order it
/// against the other paths.</para>
/// <para>Why the to-VRAM path zaps the device's own mappings before migrate_vma_setup: a DMA-mapped page carries an
/// extra reference, and setup refuses to move a page with references beyond its mappings. With the mappings gone and
/// <c>_lock</c> held (the fault handler takes it too), nothing maps the range again until the migration is over, so
/// the invalidate callback can skip its own zap for this migration (the owner check).</para>
/// </remarks>
internal sealed class GpuMigrator
{
    private const int ChunkPages = 512;
    private const ulong PageSize = PhysicalMemory.PageSize;

    [OwnerToken]   // the pgmap owner GpuVram registered
    private readonly GpuDevice _device;
    private readonly KMutex _lock;
    private GpuContext? _toVram;        // under _lock: the context whose to-VRAM migrate_vma_setup the lock holder runs
    private long _toVramPages;
    private long _toSystemPages;
    private long _evictedPages;
    private long _cpuFaultPages;

    public GpuMigrator(GpuDevice device)
    {
        _device = device;
        _lock = new KMutex(device.Kernel, "gpu.migrate");
    }

    /// <summary>Pages moved to VRAM.</summary>
    public long ToVramPages => Interlocked.Read(ref _toVramPages);

    /// <summary>Pages moved back to system memory by prefetch or eviction or a CPU touch.</summary>
    public long ToSystemPages => Interlocked.Read(ref _toSystemPages);

    /// <summary>Pages evicted because VRAM was full.</summary>
    public long EvictedPages => Interlocked.Read(ref _evictedPages);

    /// <summary>Pages brought back because the CPU touched them (migrate_to_ram).</summary>
    public long CpuFaultPages => Interlocked.Read(ref _cpuFaultPages);

    /// <summary>Takes the migration lock (fault groups and driver-initiated migrations). May sleep.</summary>
    public LockScope Lock() => _lock.Scoped();

    /// <summary>Throws unless the calling thread holds the migration lock (<paramref name="requiredBy"/> names the caller).</summary>
    public void AssertLockHeld(string requiredBy) => _lock.AssertHeld(requiredBy);

    /// <summary>
    /// Whether the calling thread is inside this driver's own to-VRAM migrate_vma_setup for <paramref name="ctx"/> (the
    /// context whose mappings of the range that migration removed; another context of the same process still maps
    /// its pages and must zap them).
    /// </summary>
    public bool InOwnMigrationToVram(GpuContext ctx) => _lock.IsHeldByCurrentThread && ReferenceEquals(_toVram, ctx);

    /// <summary>
    /// Migrates [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="ctx"/>'s process to VRAM, evicting
    /// as needed, in chunks of at most 512 pages. Pages that cannot move (pinned, VRAM full after eviction, racing
    /// faults) stay where they are. Returns EFAULT if a part of the range is not mapped. Caller holds the migration
    /// lock. May sleep.
    /// </summary>
    public Errno ToVramLocked(GpuContext ctx, ulong start, ulong end, out long moved)
    {
        _lock.AssertHeld("GpuMigrator.ToVramLocked");
        moved = 0;
        if (_device.IsRemoved)
            return Errno.ENODEV;            // VRAM is being emptied for removal
        if (ctx.IsClosed)
            return Errno.EFAULT;            // its page table is gone (Close holds this lock while it frees it)
        var mm = ctx.Process.Mm;
        if (!mm.MmGetNotZero())
            return Errno.EFAULT;
        try
        {
            for (ulong addr = start; addr < end;)
            {
                ulong chunkEnd = Math.Min(end, addr + (ChunkPages * PageSize));
                using (mm.MmapReadLock())
                {
                    var vma = mm.VmaLookup(addr);
                    if (vma is null || (vma.Flags & VmFlags.Read) == 0)
                        return Errno.EFAULT;
                    chunkEnd = Math.Min(chunkEnd, vma.End);
                }
                if (!ctx.HasPagesOutsideVram(addr, chunkEnd))
                {
                    // Already all ours: migrate_vma_setup would move nothing, yet invalidate every other mirror of
                    // the range (another context of this process would fault back, migrate, and zap ours: a livelock).
                    addr = chunkEnd;
                    continue;
                }
                int pages = (int)((chunkEnd - addr) / PageSize);
                while (_device.Vram.FreePages < pages && EvictOneLocked())
                {
                }
                ctx.ZapRange(addr, chunkEnd);
                var err = ToVramChunk(ctx, mm, addr, chunkEnd, ref moved);
                if (err != Errno.Ok)
                    return err;
                addr = chunkEnd;
            }
            return Errno.Ok;
        }
        finally
        {
            mm.MmPut();
        }
    }

    /// <summary>
    /// Migrates this device's VRAM pages in [<paramref name="start"/>, <paramref name="end"/>) of
    /// <paramref name="ctx"/>'s process back to system memory. Caller holds the migration lock. May sleep.
    /// </summary>
    public Errno ToSystemLocked(GpuContext ctx, ulong start, ulong end, out long moved)
    {
        _lock.AssertHeld("GpuMigrator.ToSystemLocked");
        moved = 0;
        if (ctx.IsClosed)
            return Errno.EFAULT;            // its page table is gone (Close holds this lock while it frees it)
        var mm = ctx.Process.Mm;
        if (!mm.MmGetNotZero())
            return Errno.EFAULT;
        try
        {
            for (ulong addr = start; addr < end;)
            {
                using (mm.MmapReadLock())
                {
                    var vma = mm.VmaLookup(addr);
                    if (vma is null)
                        return Errno.EFAULT;
                    ulong chunkEnd = Math.Min(Math.Min(end, addr + (ChunkPages * PageSize)), vma.End);
                    var args = NewArgs(vma, addr, chunkEnd, MigrateSelect.DevicePrivate);
                    var err = Migrate.VmaSetup(args);
                    if (err != Errno.Ok)
                        return err;
                    moved += CopyBackAndFinish(args);
                    addr = chunkEnd;
                }
            }
            return Errno.Ok;
        }
        finally
        {
            mm.MmPut();
        }
    }

    /// <summary>
    /// dev_pagemap_ops.migrate_to_ram: the CPU touched a VRAM page; bring it back (the kernel holds the mmap lock).
    /// The invalidate callback removes the device's mapping of it and waits for the device before the copy.
    /// </summary>
    public VmFaultResult MigrateToRam(DeviceFault fault)
    {
        if (_device.IsQuiesced)
            return VmFaultResult.SigBus;    // the device is gone: nothing can copy the page out any more
        // The aligned fault-around window inside the VMA, as on the GPU side: a CPU streaming through memory the
        // GPU left in VRAM takes one fault (and one copy batch) per window, not per page.
        ulong window = (ulong)Math.Max(1, _device.Options.CpuFaultWindowPages) * PageSize;
        ulong page = fault.Address & ~(PageSize - 1);
        ulong start = Math.Max(fault.Vma.Start, page / window * window);
        ulong end = Math.Min(fault.Vma.End, start + window);
        var args = NewArgs(fault.Vma, start, end, MigrateSelect.DevicePrivate);
        args.FaultPage = fault.Page;
        if (Migrate.VmaSetup(args) != Errno.Ok)
            return VmFaultResult.SigBus;
        ulong index = (page - start) / PageSize;
        bool selected = (args.Src![index] & MigratePfn.Migrate) != 0;
        long moved = CopyBackAndFinish(args, out var copy);
        Interlocked.Add(ref _cpuFaultPages, moved);
        // Not selected: someone else moved it meanwhile, and the CPU fault simply retries. Selected but not moved:
        // out of memory if no system page could be had; a copy that failed (a reset) is retried by the next fault.
        bool faultPageMoved = (args.Src[index] & MigratePfn.Migrate) != 0 && MigratePfn.ToPfn(args.Dst![index]) is not null;
        if (!selected || faultPageMoved)
            return VmFaultResult.Ok;
        return copy == Errno.ENOMEM ? VmFaultResult.Oom : _device.IsQuiesced ? VmFaultResult.SigBus : VmFaultResult.Ok;
    }

    // migrate_vma_setup to VRAM (the device's mappings of the range are already gone), VRAM pages filled by the
    // copy engine, pages, finalize. Caller holds _lock, not the mmap lock.
    private Errno ToVramChunk(GpuContext ctx, Mm mm, ulong addr, ulong end, ref long moved)
    {
        var mem = _device.Kernel.Memory;
        var vram = _device.Vram;
        using (mm.MmapReadLock())
        {
            var vma = mm.VmaLookup(addr);
            if (vma is null || vma.Start > addr)
                return Errno.EFAULT;
            var args = NewArgs(vma, addr, Math.Min(end, vma.End), MigrateSelect.System);
            _toVram = ctx;
            Errno err;
            try
            {
                err = Migrate.VmaSetup(args);
            }
            finally
            {
                _toVram = null;
            }
            if (err != Errno.Ok)
                return err;
            var copies = new List<(ulong, ulong)>();
            var mapped = new List<ulong>();
            for (ulong i = 0; i < args.NPages; i++)
            {
                ulong src = args.Src![i];
                if ((src & MigratePfn.Migrate) == 0)
                    continue;
                ulong? spfn = MigratePfn.ToPfn(src);
                if (spfn is ulong d && mem.IsDevicePage(d))
                    continue;               // another device's page: not selected with MigrateSelect.System anyway
                if (!vram.TryAlloc(out ulong dpfn))
                    continue;
                ulong source = GpuCopyEngine.ZeroSource;
                if (spfn is ulong s)
                {
                    if (_device.Pci.DmaMapPage(s, out ulong bus) != Errno.Ok)
                    {
                        mem.UnlockPage(dpfn);
                        mem.PutPage(dpfn);
                        continue;
                    }
                    mapped.Add(bus);
                    source = GpuCopyAddress.System(bus);
                }
                copies.Add((source, GpuCopyAddress.Vram(vram.OffsetOf(dpfn))));
                bool write = (src & MigratePfn.Write) != 0 || (spfn is null && (vma.Flags & VmFlags.Write) != 0);
                args.Dst![i] = MigratePfn.From(dpfn) | (write ? MigratePfn.Write : 0);
            }
            err = _device.CopyEngine.Run(copies);
            foreach (ulong bus in mapped)
                _device.Pci.DmaUnmapPage(bus);
            if (err != Errno.Ok)
                ReleaseDestinations(args);
            Migrate.VmaPages(args);
            long n = CountMigrated(args);
            Migrate.VmaFinalize(args);
            _device.Vram.TraceUsage();
            moved += n;
            Interlocked.Add(ref _toVramPages, n);
            return Errno.Ok;
        }
    }

    // For each selected VRAM page: a new locked system page filled by the copy engine; then pages and finalize.
    // Pages that get no system page stay in VRAM. Returns how many moved. The caller holds the mmap lock.
    private long CopyBackAndFinish(MigrateVma args) => CopyBackAndFinish(args, out _);

    private long CopyBackAndFinish(MigrateVma args, out Errno copy)
    {
        copy = FillSystemDestinations(args.Src!, args.Dst!, (int)args.NPages);
        Migrate.VmaPages(args);
        long n = CountMigrated(args);
        Migrate.VmaFinalize(args);
        _device.Vram.TraceUsage();
        Interlocked.Add(ref _toSystemPages, n);
        return n;
    }

    // Evicts the least recently used VRAM block (migrate_device_range). Caller holds _lock and no mmap lock.
    private bool EvictOneLocked() =>
        _device.Vram.TryPickVictim(out ulong first, out int pages) && EvictLocked(first, pages);

    /// <summary>
    /// Evicts every page still in VRAM (before the driver lets go of the device: the CPU could not reach them after).
    /// Returns false if some page could not be moved. Caller holds the migration lock and no mmap lock. May sleep.
    /// </summary>
    public bool EvictAllLocked()
    {
        _lock.AssertHeld("GpuMigrator.EvictAllLocked");
        var vram = _device.Vram;
        for (int b = 0; b < vram.Blocks; b++)
        {
            if (vram.BlockInUse(b, out ulong first, out int pages))
                EvictLocked(first, pages);
        }
        return vram.FreePages == vram.Pages;
    }

    // migrate_device_range over [first, +pages): every page in use goes back to system memory.
    private bool EvictLocked(ulong first, int pages)
    {
        var m = DeviceMigration.Range(_device.Kernel, first, pages);
        FillSystemDestinations(m.Src, m.Dst, pages);
        m.Pages();
        long n = 0;
        for (int i = 0; i < pages; i++)
        {
            if ((m.Src[i] & MigratePfn.Migrate) != 0 && MigratePfn.ToPfn(m.Dst[i]) is not null)
                n++;
        }
        m.Complete();
        _device.Vram.TraceUsage();
        Interlocked.Add(ref _evictedPages, n);
        Interlocked.Add(ref _toSystemPages, n);
        return n > 0;
    }

    // Gives every selected VRAM page a locked system destination holding its bytes (copy engine); on a copy error
    // every destination is released and nothing moves. Returns ENOMEM if a system page was missing, EIO if the copy
    // failed. May sleep.
    private Errno FillSystemDestinations(ulong[] src, ulong[] dst, int count)
    {
        var result = Errno.Ok;
        var mem = _device.Kernel.Memory;
        var vram = _device.Vram;
        var copies = new List<(ulong, ulong)>();
        var mapped = new List<ulong>();
        for (int i = 0; i < count; i++)
        {
            if ((src[i] & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(src[i]) is not ulong spfn || !vram.Owns(spfn))
                continue;
            if (mem.AllocPage(Gfp.HighUser, out ulong page) != Errno.Ok)
            {
                result = Errno.ENOMEM;
                continue;
            }
            mem.LockPage(page);
            if (_device.Pci.DmaMapPage(page, out ulong bus) != Errno.Ok)
            {
                mem.UnlockPage(page);
                mem.PutPage(page);
                continue;
            }
            mapped.Add(bus);
            copies.Add((GpuCopyAddress.Vram(vram.OffsetOf(spfn)), GpuCopyAddress.System(bus)));
            dst[i] = MigratePfn.From(page) | (src[i] & MigratePfn.Write);
        }
        var err = _device.CopyEngine.Run(copies);
        foreach (ulong bus in mapped)
            _device.Pci.DmaUnmapPage(bus);
        if (err != Errno.Ok)
        {
            ReleaseDestinations(dst, count);
            return err;
        }
        return result;
    }

    private void ReleaseDestinations(MigrateVma args) => ReleaseDestinations(args.Dst!, (int)args.NPages);

    private void ReleaseDestinations(ulong[] dst, int count)
    {
        var mem = _device.Kernel.Memory;
        for (int i = 0; i < count; i++)
        {
            if (MigratePfn.ToPfn(dst[i]) is ulong d)
            {
                mem.UnlockPage(d);
                mem.PutPage(d);
                dst[i] = 0;
            }
        }
    }

    private static long CountMigrated(MigrateVma args)
    {
        long n = 0;
        for (ulong i = 0; i < args.NPages; i++)
        {
            if ((args.Src![i] & MigratePfn.Migrate) != 0 && MigratePfn.ToPfn(args.Dst![i]) is not null)
                n++;
        }
        return n;
    }

    private MigrateVma NewArgs(Vma vma, ulong start, ulong end, MigrateSelect select)
    {
        ulong pages = (end - start) / PageSize;
        return new MigrateVma
        {
            Vma = vma,
            Start = start,
            End = end,
            Src = new ulong[pages],
            Dst = new ulong[pages],
            PgmapOwner = _device,
            Flags = select,
        };
    }
}
