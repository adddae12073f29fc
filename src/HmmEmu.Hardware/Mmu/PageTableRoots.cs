namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// The device's page-table base per address-space id: the root entry a context's walks start from. The device
/// model sets an entry when the driver writes the context's page-table-base register; several engines (each with
/// its own <see cref="DeviceMmu"/> and TLB) share one set of roots.
/// </summary>
/// <remarks>
/// A root is a <see cref="DevicePte"/> in table-pointer form (V set, L clear, no rights, aperture and address of the
/// level-4 table). It is stored as written: a malformed root is reported by the walker (BadTable), never here.
/// Changing a root does not flush any TLB; the driver invalidates the address-space id afterwards, as it would after
/// changing any entry. Thread-safe: roots are read and written atomically.
/// </remarks>
public sealed class PageTableRoots
{
    private readonly ulong[] _roots;

    /// <summary>Creates roots for address-space ids 0 to <paramref name="capacity"/> - 1, all not present.</summary>
    public PageTableRoots(int capacity = 256)
    {
        if (capacity is < 1 or > ushort.MaxValue + 1)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity,
                "A device has between 1 and 65536 address-space ids.");
        }
        _roots = new ulong[capacity];
    }

    /// <summary>How many address-space ids the device supports (ids are below this).</summary>
    public int Capacity => _roots.Length;

    /// <summary>Whether <paramref name="asid"/> is one of the device's address-space ids.</summary>
    public bool Contains(ushort asid) => asid < _roots.Length;

    /// <summary>The root entry of <paramref name="asid"/> (not present if never set).</summary>
    public DevicePte this[ushort asid]
    {
        get => new(Volatile.Read(ref _roots[Check(asid)]));
        set => Volatile.Write(ref _roots[Check(asid)], value.Value);
    }

    /// <summary>Reads the root of <paramref name="asid"/>; false when the id is outside <see cref="Capacity"/>.</summary>
    public bool TryGet(ushort asid, out DevicePte root)
    {
        if (asid >= _roots.Length)
        {
            root = DevicePte.Invalid;
            return false;
        }
        root = new DevicePte(Volatile.Read(ref _roots[asid]));
        return true;
    }

    /// <summary>Makes <paramref name="asid"/> have no page table (every walk in it is not present).</summary>
    public void Clear(ushort asid) => this[asid] = DevicePte.Invalid;

    private int Check(ushort asid)
    {
        if (asid >= _roots.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(asid), asid,
                $"Address-space id {asid} is outside the device's {_roots.Length} ids. A device model must check " +
                "the context number the driver wrote (Contains) and report a bad-register error instead.");
        }
        return asid;
    }
}
