using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Migration;

/// <summary>
/// migrate_device_range / migrate_device_pages / migrate_device_finalize: evicting device pages by pfn, wherever they
/// are mapped (a driver reclaiming or removing its memory). Same protocol as <see cref="Migrate"/>, keyed by device
/// pfn instead of by virtual range. One instance is one eviction.
/// </summary>
public sealed class DeviceMigration
{
    private readonly HostKernel _kernel;
    private readonly List<(Vma Vma, ulong Addr, ulong Pfn)> _places = [];
    private bool _finalized;

    private DeviceMigration(HostKernel kernel, ulong firstPfn, ulong[] src, ulong[] dst)
    {
        _kernel = kernel;
        FirstPfn = firstPfn;
        Src = src;
        Dst = dst;
    }

    /// <summary>The first device pfn of the range.</summary>
    public ulong FirstPfn { get; }

    /// <summary>Per pfn: <see cref="MigratePfn"/> bits of the page collected (0 if it was free).</summary>
    public ulong[] Src { get; }

    /// <summary>Per pfn: the driver's locked destination page (0 to leave the page where it is).</summary>
    public ulong[] Dst { get; }

    /// <summary>
    /// migrate_device_range: collects every in-use page of [<paramref name="firstPfn"/>, +<paramref name="npages"/>)
    /// (referenced and locked) and unmaps it from every address space, leaving migration entries. The driver then
    /// fills <see cref="Dst"/> and calls <see cref="Pages"/> and <see cref="Complete"/>. May sleep.
    /// </summary>
    public static DeviceMigration Range(HostKernel kernel, ulong firstPfn, int npages)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(npages);
        var pgmap = DevicePagemap.Of(kernel, firstPfn);
        if (pgmap is null || !pgmap.Contains(firstPfn + (ulong)npages - 1))
            throw new ArgumentOutOfRangeException(nameof(firstPfn), $"[0x{firstPfn:x}, +{npages}) is not inside one device pagemap.");
        kernel.MightSleep("migrate_device_range");
        var mem = kernel.Memory;
        var m = new DeviceMigration(kernel, firstPfn, new ulong[npages], new ulong[npages]);
        for (int i = 0; i < npages; i++)
        {
            ulong pfn = firstPfn + (ulong)i;
            if (mem.TryGetPage(pfn))
                m.Src[i] = MigratePfn.From(pfn) | MigratePfn.Migrate;
        }
        // Unmap first (taking each address space's mmap lock), lock the pages after: waiting for an mmap lock while
        // holding page locks could deadlock against a fault that holds the mmap lock and retries on the page lock.
        foreach (var mm in kernel.LiveAddressSpaces())
            mm.UnmapForDeviceEviction(firstPfn, m.Src, m._places);
        for (int i = 0; i < npages; i++)
        {
            if (MigratePfn.ToPfn(m.Src[i]) is ulong pfn)
                mem.LockPage(pfn);
        }
        return m;
    }

    /// <summary>migrate_device_pages: entries without a destination keep their page. Destinations must be locked.</summary>
    public void Pages()
    {
        var mem = _kernel.Memory;
        for (int i = 0; i < Src.Length; i++)
        {
            if ((Src[i] & MigratePfn.Migrate) != 0 && MigratePfn.ToPfn(Dst[i]) is ulong d && !mem.HasFlags(d, PageFlags.Locked))
                throw new KernelRuleViolationException($"migrate_device_pages: dst[{i}] (pfn 0x{d:x}) is not locked. Lock every destination page first.");
        }
        for (int i = 0; i < Src.Length; i++)
        {
            if ((Src[i] & MigratePfn.Migrate) != 0 && MigratePfn.ToPfn(Dst[i]) is null)
                Src[i] &= ~MigratePfn.Migrate;
        }
    }

    /// <summary>migrate_device_finalize (named Complete: .NET reserves Finalize): maps the new pages (or the old ones again) everywhere, and drops locks and references.</summary>
    public void Complete()
    {
        if (_finalized)
            throw new InvalidOperationException("migrate_device_finalize called twice for one eviction.");
        _finalized = true;
        var mem = _kernel.Memory;
        foreach (var (vma, addr, pfn) in _places)
        {
            int i = (int)(pfn - FirstPfn);
            bool migrated = (Src[i] & MigratePfn.Migrate) != 0 && MigratePfn.ToPfn(Dst[i]) is not null;
            vma.Mm.RestoreAfterDeviceEviction(vma, addr, pfn, migrated ? MigratePfn.ToPfn(Dst[i])!.Value : pfn);
        }
        for (int i = 0; i < Src.Length; i++)
        {
            if (MigratePfn.ToPfn(Src[i]) is ulong s)
            {
                if ((Src[i] & MigratePfn.Migrate) != 0 && MigratePfn.ToPfn(Dst[i]) is ulong dd && mem.HasFlags(s, PageFlags.Dirty))
                    mem.SetFlags(dd, PageFlags.Dirty);
                mem.UnlockPage(s);
                mem.PutPage(s);
            }
            if (MigratePfn.ToPfn(Dst[i]) is ulong d)
            {
                mem.UnlockPage(d);
                mem.PutPage(d);
            }
        }
    }
}
