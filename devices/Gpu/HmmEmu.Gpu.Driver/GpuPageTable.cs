using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;

namespace HmmEmu.Gpu.Driver;

/// <summary>
/// The driver's side of one context's device page table: the 4-level table of <c>docs/hardware.md</c> kept in coherent
/// DMA pages that the GPU walks. Tables are created ahead of use under the table lock (allocation may reclaim, so it
/// never happens under the lock the invalidate callback takes) and freed only when the context goes away, so leaf
/// updates under the page-table lock never allocate.
/// </summary>
/// <remarks>
/// Locks: <c>_tableLock</c> (a mutex, never taken in an invalidate callback) serialises table creation;
/// the owner's page-table lock serialises leaf updates (through <see cref="LeafTable"/>, and <see cref="Zap"/>). Entries are written
/// with single 8-byte stores, so the device's walker sees either the old or the new entry.
/// </remarks>
internal sealed class GpuPageTable
{
    private const int Levels = DevicePageTable.Levels;

    private readonly PciDev _dev;
    private readonly KMutex _tableLock;
    private readonly ConcurrentDictionary<ulong, DmaCoherentBuffer> _tables = new();   // bus address → table; lock-free lookups
    private readonly DmaCoherentBuffer _root;
    private int _destroyed;

    private GpuPageTable(PciDev dev, KMutex tableLock, DmaCoherentBuffer root)
    {
        _dev = dev;
        _tableLock = tableLock;
        _root = root;
        _tables[root.BusAddress] = root;
    }

    /// <summary>The root entry to program into CTX_PT_BASE.</summary>
    public DevicePte RootEntry => DevicePte.Table(Aperture.System, _root.BusAddress);

    /// <summary>Table pages in use (the root included).</summary>
    public int TablePages
    {
        get
        {
            using (_tableLock.Scoped())
                return _tables.Count;
        }
    }

    /// <summary>Allocates an empty table (just the root). May sleep.</summary>
    public static Errno Create(HostKernel kernel, PciDev dev, string name, out GpuPageTable? table)
    {
        table = null;
        var err = dev.AllocCoherent(DevicePageTable.TableSize, out var root, Gfp.Kernel | Gfp.Zero);
        if (err != Errno.Ok)
            return err;
        table = new GpuPageTable(dev, new KMutex(kernel, name), root!);
        return Errno.Ok;
    }

    /// <summary>
    /// Creates every missing table on the way to the leaves of [<paramref name="start"/>, <paramref name="end"/>).
    /// Takes the table lock. Returns ENOMEM if a table page could not be had (tables made so far stay). May sleep.
    /// </summary>
    public Errno EnsureTables(ulong start, ulong end)
    {
        using (_tableLock.Scoped())
        {
            if (Volatile.Read(ref _destroyed) != 0)
                return Errno.ENODEV;
            for (ulong va = start & ~(DevicePageTable.LargePageSize - 1); va < end; va += DevicePageTable.LargePageSize)
            {
                ulong table = _root.BusAddress;
                for (int level = Levels; level > 1; level--)
                {
                    ref ulong slot = ref Slot(table, level, va);
                    var entry = new DevicePte(Volatile.Read(ref slot));
                    if (!entry.IsValid)
                    {
                        var err = _dev.AllocCoherent(DevicePageTable.TableSize, out var page, Gfp.Kernel | Gfp.Zero);
                        if (err != Errno.Ok)
                            return err;
                        _tables[page!.BusAddress] = page;
                        entry = DevicePte.Table(Aperture.System, page.BusAddress);
                        Volatile.Write(ref slot, entry.Value);
                    }
                    table = entry.Address;
                }
            }
            return Errno.Ok;
        }
    }

    /// <summary>The leaf of <paramref name="va"/> (invalid if none). Caller holds the page-table lock.</summary>
    public DevicePte GetLeaf(ulong va)
    {
        ulong table = _root.BusAddress;
        for (int level = Levels; level > 1; level--)
        {
            var entry = new DevicePte(Volatile.Read(ref Slot(table, level, va)));
            if (!entry.IsTable)
                return DevicePte.Invalid;
            table = entry.Address;
        }
        return new DevicePte(Volatile.Read(ref Slot(table, 1, va)));
    }

    /// <summary>
    /// The 512 leaf entries of the table that covers <paramref name="va"/>'s 2 MiB region, or an empty span if a table
    /// on the way is missing (<see cref="EnsureTables"/> makes them). Lets a caller update many leaves of a region with
    /// one walk; read and write the entries with <see cref="Volatile"/> (the device walks them concurrently). Caller
    /// holds the page-table lock. Never sleeps, never allocates.
    /// </summary>
    public Span<ulong> LeafTable(ulong va)
    {
        ulong table = _root.BusAddress;
        for (int level = Levels; level > 1; level--)
        {
            var entry = new DevicePte(Volatile.Read(ref Slot(table, level, va)));
            if (!entry.IsTable)
                return default;
            table = entry.Address;
        }
        return MemoryMarshal.Cast<byte, ulong>(_tables[table].Span);
    }

    /// <summary>
    /// Clears every leaf in [<paramref name="start"/>, <paramref name="end"/>), visiting only tables that exist, and
    /// adds the system-memory address of each cleared leaf to <paramref name="systemPages"/> (when not null). Returns
    /// how many leaves were cleared. Caller holds the page-table lock. Never sleeps.
    /// </summary>
    [HmmEmu.Annotations.DeviceZap]
    public int Zap(ulong start, ulong end, List<ulong>? systemPages) =>
        end <= start ? 0 : ZapIn(_root.BusAddress, Levels, 0, start, end, systemPages, dryRun: false);

    /// <summary>Whether any leaf in [<paramref name="start"/>, <paramref name="end"/>) is valid. Caller holds the page-table lock.</summary>
    public bool AnyValid(ulong start, ulong end) =>
        end > start && ZapIn(_root.BusAddress, Levels, 0, start, end, null, dryRun: true) != 0;

    /// <summary>
    /// Frees every table page. The context must be gone from the device (CTX_CONTROL.VALID clear, TLB invalidated)
    /// and every leaf zapped. May sleep.
    /// </summary>
    public void Destroy()
    {
        using (_tableLock.Scoped())
        {
            if (Interlocked.Exchange(ref _destroyed, 1) != 0)
                return;
            // In address order: the allocator's free list (and so later allocations) must not depend on the
            // dictionary's enumeration order.
            foreach (var table in _tables.Keys.Order())
                _dev.FreeCoherent(_tables[table]);
            _tables.Clear();
        }
    }

    private int ZapIn(ulong table, int level, ulong tableBase, ulong start, ulong end, List<ulong>? systemPages, bool dryRun)
    {
        int shift = DevicePageTable.LevelShift(level);
        ulong span = 1UL << shift;
        int first = start <= tableBase ? 0 : (int)((start - tableBase) >> shift);
        int count = 0;
        for (int i = first; i < DevicePageTable.EntriesPerTable; i++)
        {
            ulong entryBase = tableBase + ((ulong)i << shift);
            if (entryBase >= end)
                break;
            ref ulong slot = ref SlotAt(table, i);
            var entry = new DevicePte(Volatile.Read(ref slot));
            if (!entry.IsValid)
                continue;
            if (level > 1 && entry.IsTable)
            {
                count += ZapIn(entry.Address, level - 1, entryBase, start, end, systemPages, dryRun);
                if (dryRun && count != 0)
                    return count;
                continue;
            }
            if (entryBase < start || entryBase + span > end)
                continue;   // a large leaf only partly covered: this driver maps 4 KiB leaves only
            count++;
            if (dryRun)
                return count;
            if (entry.Aperture == Aperture.System)
                systemPages?.Add(entry.Address);
            Volatile.Write(ref slot, DevicePte.Invalid.Value);
        }
        return count;
    }

    private ref ulong Slot(ulong table, int level, ulong va) => ref SlotAt(table, DevicePageTable.IndexOf(level, va));

    private ref ulong SlotAt(ulong table, int index)
    {
        if (!_tables.TryGetValue(table, out var page))
        {
            throw new InvalidOperationException(
                $"GPU page table: table 0x{table:x} is not one of this context's (destroyed: {Volatile.Read(ref _destroyed) != 0}). " +
                "Use the table only under the migration lock, and not after Destroy.");
        }
        var span = page.Span;
        return ref Unsafe.As<byte, ulong>(ref span[index * DevicePageTable.EntrySize]);
    }
}
