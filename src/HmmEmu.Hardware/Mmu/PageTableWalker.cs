using System.Diagnostics;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Translation;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// Walks the device page table (see <see cref="DevicePageTable"/> and <see cref="DevicePte"/>) through the memory
/// ports the tables live in, checks the leaf's rights against the access, and charges virtual time per entry read.
/// Bad table contents are answered with a status, never an exception.
/// </summary>
/// <remarks>
/// The walker keeps no state besides counters, so it is safe to call from several threads; it reads each entry
/// once and does not lock the tables, exactly like hardware: a driver that changes entries while the device walks
/// them must invalidate afterwards, and the invalidation waits for the walk's use to end (see <see cref="DeviceTlb"/>).
/// </remarks>
public sealed class PageTableWalker
{
    /// <summary>The default virtual-time cost of reading one entry (a few ns, a cached page-walk read).</summary>
    public const ulong DefaultLevelNs = 5;

    private readonly IMemoryPort _system;
    private readonly IMemoryPort? _vram;
    private readonly Scheduler? _scheduler;
    private readonly ulong _levelNs;
    private long _walks;
    private long _faults;
    private long _reads;

    /// <summary>
    /// Creates a walker whose tables and pages live in <paramref name="system"/> RAM or (if the device has it)
    /// <paramref name="vram"/>, charging <paramref name="levelNs"/> virtual ns per entry read to
    /// <paramref name="scheduler"/> (no charge without one).
    /// </summary>
    public PageTableWalker(IMemoryPort system, IMemoryPort? vram = null, Scheduler? scheduler = null,
        ulong levelNs = DefaultLevelNs)
    {
        ArgumentNullException.ThrowIfNull(system);
        if (system.Aperture != Aperture.System)
            throw new ArgumentException($"The system port must serve Aperture.System, not {system.Aperture}.", nameof(system));
        if (vram is not null && vram.Aperture != Aperture.Vram)
            throw new ArgumentException($"The VRAM port must serve Aperture.Vram, not {vram.Aperture}.", nameof(vram));
        _system = system;
        _vram = vram;
        _scheduler = scheduler;
        _levelNs = levelNs;
    }

    /// <summary>Virtual ns charged per entry read.</summary>
    public ulong LevelNs => _levelNs;

    /// <summary>Walks started.</summary>
    public long Walks => Interlocked.Read(ref _walks);

    /// <summary>Walks that ended in a status other than Ok.</summary>
    public long Faults => Interlocked.Read(ref _faults);

    /// <summary>Entries read from memory by all walks.</summary>
    public long EntryReads => Interlocked.Read(ref _reads);

    /// <summary>
    /// Translates <paramref name="address"/> starting from <paramref name="root"/> (a table-pointer entry, usually a
    /// <see cref="PageTableRoots"/> entry) for <paramref name="access"/>. May yield: charges
    /// <see cref="LevelNs"/> per entry read, after the reads, which in deterministic mode lets other threads run.
    /// </summary>
    public WalkResult Walk(DevicePte root, ulong address, Access access) => Walk(root, address, access, out _);

    /// <summary>
    /// Walks as <see cref="Walk(DevicePte, ulong, Access)"/> does, for a read, but charges no time and counts nothing:
    /// for debuggers and checkers looking at the tables from outside the simulation. Never sleeps or yields.
    /// </summary>
    public WalkResult Peek(DevicePte root, ulong address) => WalkCore(root, address, Rights.Required(Access.Read), out _);

    /// <summary>
    /// <see cref="Walk(DevicePte, ulong, Access)"/>, also returning the level-1 table the walk reached (not valid when it
    /// stopped above level 1), for the page-walk cache. May yield.
    /// </summary>
    internal WalkResult Walk(DevicePte root, ulong address, Access access, out LeafTablePointer leafTable)
    {
        ulong need = Rights.Required(access);
        return Account(WalkCore(root, address, need, out leafTable));
    }

    /// <summary>
    /// Finishes a walk of <paramref name="address"/> from the level-1 table a page-walk cache kept: reads only the
    /// level-1 entry and reports exactly what a full walk through the same tables would, except <see cref="WalkResult.Reads"/>.
    /// May yield: charges <see cref="LevelNs"/> for the one read.
    /// </summary>
    internal WalkResult WalkLeafTable(in LeafTablePointer leafTable, ulong address, Access access)
    {
        Debug.Assert(leafTable.Entry.IsTable && address < DevicePageTable.VirtualAddressLimit);
        ulong need = Rights.Required(access);
        return Account(WalkFrom(1, leafTable.Entry, 2, leafTable.EntryAperture, leafTable.EntryAddress, address, need,
            out _));
    }

    private WalkResult Account(WalkResult result)
    {
        Interlocked.Increment(ref _walks);
        Interlocked.Add(ref _reads, result.Reads);
        if (!result.IsOk)
            Interlocked.Increment(ref _faults);
        if (_scheduler is not null && _levelNs != 0 && result.Reads != 0)
            _scheduler.Charge((ulong)result.Reads * _levelNs);
        return result;
    }

    private WalkResult WalkCore(DevicePte root, ulong address, ulong need, out LeafTablePointer leafTable)
    {
        leafTable = default;
        if (address >= DevicePageTable.VirtualAddressLimit)
            return new(TranslationStatus.OutOfRange, 0, root, Aperture.System, 0, 0, default);
        if (!root.IsValid)
            return new(TranslationStatus.NotPresent, 0, root, Aperture.System, 0, 0, default);
        if (!IsTablePointer(root))
            return new(TranslationStatus.BadTable, 0, root, Aperture.System, 0, 0, default);
        return WalkFrom(DevicePageTable.Levels, root, 0, Aperture.System, 0, address, need, out leafTable);
    }

    // Walks from the table that `table` (read at pointerLevel, from pointerAperture:pointerAddress) points to, which
    // sits at startLevel. leafTable is set once a level-1 entry has been read.
    private WalkResult WalkFrom(int startLevel, DevicePte table, int pointerLevel, Aperture pointerAperture,
        ulong pointerAddress, ulong address, ulong need, out LeafTablePointer leafTable)
    {
        leafTable = default;
        int reads = 0;
        for (int level = startLevel; level >= 1; level--)
        {
            var port = PortFor(table.Aperture);
            ulong entryAddress = DevicePageTable.EntryAddress(table.Address, level, address);
            if (port is null || !port.TryReadUInt64(entryAddress, out ulong raw))
            {
                // The pointer to this table is what is wrong: report it, not the unreadable slot.
                return new(TranslationStatus.BadTable, pointerLevel, table, pointerAperture, pointerAddress, reads, default);
            }
            reads++;
            if (level == 1)
                leafTable = new LeafTablePointer(table, pointerAperture, pointerAddress);
            var entry = new DevicePte(raw);
            if (!entry.IsValid)
                return new(TranslationStatus.NotPresent, level, entry, table.Aperture, entryAddress, reads, default);
            if (entry.HasReservedBits)
                return new(TranslationStatus.BadTable, level, entry, table.Aperture, entryAddress, reads, default);
            if (entry.IsLeaf)
                return Leaf(entry, level, table.Aperture, entryAddress, reads, address, need);
            if (level == 1 || (entry.Value & DevicePte.PermissionMask) != 0)
                return new(TranslationStatus.BadTable, level, entry, table.Aperture, entryAddress, reads, default);
            pointerLevel = level;
            pointerAperture = table.Aperture;
            pointerAddress = entryAddress;
            table = entry;
        }
        throw new InvalidOperationException("unreachable: level 1 entries are leaves or BadTable");
    }

    private WalkResult Leaf(DevicePte entry, int level, Aperture entryAperture, ulong entryAddress, int reads,
        ulong address, ulong need)
    {
        const ulong largeOffsetMask = DevicePageTable.LargePageSize - 1;
        if (level > 2 || (level == 2 && (entry.Address & largeOffsetMask) != 0))
            return new(TranslationStatus.BadTable, level, entry, entryAperture, entryAddress, reads, default);
        ulong pageAddress = entry.Address;
        if (level == 2)
            pageAddress |= address & largeOffsetMask & DevicePte.AddressMask;
        var port = PortFor(entry.Aperture);
        if (port is null || pageAddress >= port.Size || port.Size - pageAddress < DevicePageTable.PageSize)
            return new(TranslationStatus.OutOfRange, level, entry, entryAperture, entryAddress, reads, default);
        var page = new DevicePte((entry.Value & ~DevicePte.AddressMask) | pageAddress);
        var status = (entry.Value & need) == need ? TranslationStatus.Ok : TranslationStatus.Permission;
        return new(status, level, entry, entryAperture, entryAddress, reads, page);
    }

    private static bool IsTablePointer(DevicePte e) =>
        e.IsTable && !e.HasReservedBits && (e.Value & DevicePte.PermissionMask) == 0;

    private IMemoryPort? PortFor(Aperture aperture) => aperture == Aperture.System ? _system : _vram;
}
