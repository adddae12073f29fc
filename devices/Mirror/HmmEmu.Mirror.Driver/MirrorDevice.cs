using HmmEmu.Annotations;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Mirror;

/// <summary>
/// One mirror device node (/dev/hmm_dmirrorN) with its device-private memory. Each open gives a
/// <see cref="MirrorFile"/> that mirrors the opening process's address space. Device memory is simulated as in
/// test_hmm: every device page is backed by a system page (its zone_device_data) that holds its bytes.
/// </summary>
[OwnerToken]   // registers its pagemap with itself as the owner
public sealed class MirrorDevice : IDevicePagemapOps
{
    /// <summary>Device pages per device by default (128 MiB).</summary>
    public const int DevicePages = 32768;

    private const int HugePages = MigratePfn.CompoundPages;

    private readonly KSpinLock _freeLock;
    private readonly KMutex _filesLock;
    private readonly List<MirrorFile> _files = [];                   // open files, in open order; only under _filesLock
    private readonly ulong[] _freeMap;                                // bit set = page free; only under _freeLock
    private int _freeCount;                                           // only under _freeLock
    private int _firstFreeWord;                                       // no free page below this word; only under _freeLock

    /// <summary>
    /// Creates device <paramref name="minor"/> on <paramref name="kernel"/> and registers <paramref name="pages"/> pages
    /// (a positive multiple of 512) of its memory: device-private (as test_hmm's devices 0 and 1) or device-coherent
    /// (devices 2 and 3).
    /// </summary>
    public MirrorDevice(HostKernel kernel, int minor, MemoryType memoryType = MemoryType.DevicePrivate, int pages = DevicePages)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (pages <= 0 || pages % HugePages != 0)
            throw new ArgumentOutOfRangeException(nameof(pages), pages, "A mirror device's memory must be a positive multiple of 512 pages (whole 2 MiB blocks).");
        Kernel = kernel;
        Minor = minor;
        Capacity = pages;
        _freeLock = new KSpinLock(kernel, "dmirror.device.lock");
        _filesLock = new KMutex(kernel, "dmirror.device.files");
        _freeMap = new ulong[pages / 64];
        Pagemap = DevicePagemap.Register(kernel, memoryType, pages, this, this);
        Array.Fill(_freeMap, ulong.MaxValue);
        _freeCount = pages;
    }

    /// <summary>How many pages of device memory the device has.</summary>
    public int Capacity { get; }

    /// <summary>The kernel the device is attached to.</summary>
    public HostKernel Kernel { get; }

    /// <summary>The device number.</summary>
    public int Minor { get; }

    /// <summary>The device's memory.</summary>
    public DevicePagemap Pagemap { get; }

    /// <summary>Whether the device's memory is CPU-coherent (otherwise device-private).</summary>
    public bool IsCoherent => Pagemap.Type == MemoryType.DeviceCoherent;

    /// <summary>How many device pages are free.</summary>
    public int FreeDevicePages
    {
        get
        {
            using (_freeLock.Scoped())
                return _freeCount;
        }
    }

    /// <summary>
    /// open(2) on the device node by the calling process: registers an interval notifier over the whole address
    /// space. Returns the errno of the notifier registration on failure. Must run on a process thread. May sleep.
    /// </summary>
    public Errno Open(out MirrorFile? file)
    {
        var process = Kernel.CurrentProcess ?? throw new InvalidOperationException(
            "MirrorDevice.Open must be called from a thread of a simulated process (Process.StartThread): the mirror binds to the caller's address space.");
        file = new MirrorFile(this, process.Mm);
        var err = file.Notifier.Insert(process.Mm, 0, ulong.MaxValue & ~0xFFFUL);
        if (err != Errno.Ok)
        {
            file = null;
            return err;
        }
        using (_filesLock.Scoped())
            _files.Add(file);
        return Errno.Ok;
    }

    /// <summary>Forgets a closed file (its entries are gone with it). May sleep.</summary>
    internal void Closed(MirrorFile file)
    {
        using (_filesLock.Scoped())
            _files.Remove(file);
    }

    /// <summary>
    /// Drops the device entries for <paramref name="pages"/> pages from <paramref name="addr"/> in every open file
    /// that mirrors <paramref name="mm"/>: those pages just went back to system memory there. The page's owner may
    /// be a file of another address space (a device page shared copy-on-write after fork), and its entry stays: the
    /// page is still mapped there. The invalidation of the migration skipped this device's own entries, so this is
    /// what keeps them coherent. May sleep.
    /// </summary>
    private void ForgetMigrated(Mm mm, ulong addr, int pages)
    {
        MirrorFile[] files;
        using (_filesLock.Scoped())
            files = [.. _files];
        foreach (var f in files)
        {
            if (f.Mirrors(mm))
                f.ForgetPages(addr, pages);
        }
    }

    /// <summary>
    /// Allocates a device page for <paramref name="owner"/> (dmirror_devmem_alloc_page): locked, one reference, with a
    /// backing system page whose bytes the caller must fill. With <paramref name="huge"/>, a 2 MiB device page instead: 512 contiguous, aligned
    /// device frames (each locked, with one reference) backed by a 2 MiB system page. ENOMEM when device memory (or a
    /// free aligned 2 MiB run of it) or the backing memory runs out. May sleep.
    /// </summary>
    internal Errno AllocPage(MirrorFile owner, bool huge, out ulong pfn)
    {
        int count = huge ? HugePages : 1;
        // Device-private memory is simulated by backing system pages; coherent memory the CPU can touch directly.
        ulong backing = 0;
        pfn = 0;
        if (!IsCoherent)
        {
            // Not zeroed here: the caller fills every page (a copy of the source, or zeros).
            var err = huge
                ? Kernel.Memory.AllocContiguous(9, Gfp.HighUser, out backing)
                : Kernel.Memory.AllocPage(Gfp.HighUser, out backing);
            if (err != Errno.Ok)
                return err;
        }
        int index;
        using (_freeLock.Scoped())
            index = huge ? TakeHugeRun() : TakeOne();
        if (index < 0)
        {
            for (int j = 0; j < count && backing != 0; j++)
                Kernel.Memory.PutPage(backing + (ulong)j);
            return Errno.ENOMEM;
        }
        pfn = Pagemap.FirstPfn + (ulong)index;
        for (int j = 0; j < count; j++)
        {
            ulong p = pfn + (ulong)j;
            Pagemap.InitPage(p);
            Pagemap.SetZoneDeviceData(p, new DevicePage(IsCoherent ? p : backing + (ulong)j, owner));
        }
        return Errno.Ok;
    }

    // The lowest free page's index, taken; -1 if none. Caller holds _freeLock.
    private int TakeOne()
    {
        for (int w = _firstFreeWord; w < _freeMap.Length; w++)
        {
            if (_freeMap[w] == 0)
                continue;
            int bit = System.Numerics.BitOperations.TrailingZeroCount(_freeMap[w]);
            _freeMap[w] &= ~(1UL << bit);
            _freeCount--;
            _firstFreeWord = w;
            return (w << 6) + bit;
        }
        _firstFreeWord = _freeMap.Length;
        return -1;
    }

    // The lowest wholly free, 512-aligned run's first index, taken; -1 if none. Caller holds _freeLock.
    private int TakeHugeRun()
    {
        const int wordsPerRun = HugePages / 64;
        for (int w = _firstFreeWord / wordsPerRun * wordsPerRun; w < _freeMap.Length; w += wordsPerRun)
        {
            bool free = true;
            for (int k = 0; k < wordsPerRun && free; k++)
                free = _freeMap[w + k] == ulong.MaxValue;
            if (!free)
                continue;
            for (int k = 0; k < wordsPerRun; k++)
                _freeMap[w + k] = 0;
            _freeCount -= HugePages;
            return w << 6;
        }
        return -1;
    }

    /// <summary>BACKING_PAGE: the system page holding a device page's bytes, or the page itself for system memory.</summary>
    internal ulong BackingPfn(ulong pfn) =>
        DevicePagemap.Of(Kernel, pfn)?.GetZoneDeviceData(pfn) is DevicePage d ? d.Backing : pfn;

    /// <summary>
    /// dmirror_device_evict_chunk for the whole device: every page in use goes back to system memory, wherever it is
    /// mapped, and every mirror's entries for it are dropped by the invalidations. May sleep.
    /// </summary>
    public Errno EvictAll()
    {
        var mem = Kernel.Memory;
        var m = DeviceMigration.Range(Kernel, Pagemap.FirstPfn, Capacity);
        var result = Errno.Ok;
        for (int i = 0; i < Capacity; i++)
        {
            ulong src = m.Src[i];
            if ((src & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(src) is not ulong spfn)
                continue;
            if (CopyToNewSystemPage(spfn, out ulong dpfn) != Errno.Ok)
            {
                result = Errno.ENOMEM;
                continue;
            }
            m.Dst[i] = MigratePfn.From(dpfn) | (src & MigratePfn.Write);
        }
        m.Pages();
        m.Complete();
        return result;
    }

    // A locked system page holding a copy of device page spfn's bytes. May sleep.
    private Errno CopyToNewSystemPage(ulong spfn, out ulong dpfn)
    {
        var mem = Kernel.Memory;
        var err = mem.AllocPage(Gfp.HighUser, out dpfn);
        if (err != Errno.Ok)
            return err;
        mem.LockPage(dpfn);
        mem.CopyPage(dpfn, BackingPfn(spfn));
        return Errno.Ok;
    }

    /// <inheritdoc />
    public void PageFree(ulong pfn)
    {
        if (Pagemap.GetZoneDeviceData(pfn) is DevicePage d && d.Backing != pfn)
            Kernel.Memory.PutPage(d.Backing);
        Pagemap.SetZoneDeviceData(pfn, null);
        int index = (int)(pfn - Pagemap.FirstPfn);
        using (_freeLock.Scoped())
        {
            _freeMap[index >> 6] |= 1UL << (index & 63);
            _freeCount++;
            _firstFreeWord = Math.Min(_firstFreeWord, index >> 6);
        }
    }

    /// <summary>
    /// dmirror_devmem_fault: migrates the faulting page back to system memory; a fault on a device THP's PMD entry
    /// migrates its whole 2 MiB block (as a 2 MiB system page when one can be had).
    /// </summary>
    public VmFaultResult MigrateToRam(DeviceFault fault)
    {
        var owner = (Pagemap.GetZoneDeviceData(fault.Page) as DevicePage)?.Owner;
        ulong size = (ulong)PhysicalMemory.PageSize << fault.Order;
        ulong start = fault.Address & ~(size - 1);
        ulong npages = size >> PhysicalMemory.PageShift;
        var args = new MigrateVma
        {
            Vma = fault.Vma,
            Start = start,
            End = start + size,
            Src = new ulong[npages],
            Dst = new ulong[npages],
            PgmapOwner = this,
            Flags = (IsCoherent ? MigrateSelect.DeviceCoherent : MigrateSelect.DevicePrivate) | (fault.Order > 0 ? MigrateSelect.Compound : 0),
            FaultPage = fault.Page,
        };
        if (Migrate.VmaSetup(args) != Errno.Ok)
            return VmFaultResult.SigBus;
        if (CopyToSystem(args, owner) != Errno.Ok)
        {
            Migrate.VmaFinalize(args);
            return VmFaultResult.Oom;
        }
        Migrate.VmaPages(args);
        Migrate.VmaFinalize(args);
        return VmFaultResult.Ok;
    }

    /// <summary>
    /// dmirror_devmem_fault_alloc_and_copy: for each selected device page, a locked system page with its bytes, and the
    /// owning mirror's entry for the address erased. A compound (2 MiB) entry gets a 2 MiB system page, or 512 small
    /// ones when that fails or the owner's one-shot FAIL_ALLOC flag is set. Returns ENOMEM when a small page could not
    /// be had; every destination already chosen is released, and nothing has moved yet. May sleep.
    /// </summary>
    internal Errno CopyToSystem(MigrateVma args, MirrorFile? onlyOwner)
    {
        var mem = Kernel.Memory;
        for (ulong i = 0; i < args.NPages; i++)
        {
            ulong src = args.Src![i];
            if ((src & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(src) is not ulong spfn)
                continue;
            var owner = (Pagemap.GetZoneDeviceData(spfn) as DevicePage)?.Owner ?? onlyOwner;
            bool failAlloc = owner?.TakeFailAlloc() ?? false;
            ulong write = src & MigratePfn.Write;
            if ((src & MigratePfn.Compound) != 0)
            {
                int n = (int)Math.Min((ulong)HugePages, args.NPages - i);
                // __GFP_NOWARN (a kernel allocation flag, not a compiler warning): failing here is expected and
                // handled, by falling back to 512 small pages below.
                if (!failAlloc && mem.AllocContiguous(9, Gfp.HighUser | Gfp.NoWarn, out ulong d0) == Errno.Ok)   // NoWarn: the kernel flag; failure is handled below
                {
                    for (int j = 0; j < HugePages; j++)
                    {
                        mem.LockPage(d0 + (ulong)j);
                        mem.CopyPage(d0 + (ulong)j, BackingPfn(spfn + (ulong)j));
                    }
                    args.Dst![i] = MigratePfn.From(d0) | MigratePfn.Compound | write;
                }
                else
                {
                    for (int j = 0; j < n; j++)
                    {
                        if (CopyToNewSystemPage(spfn + (ulong)j, out ulong d) != Errno.Ok)
                            return ReleaseDestinations(args, i + (ulong)j);
                        args.Dst![i + (ulong)j] = MigratePfn.From(d) | write;
                    }
                }
                ForgetMigrated(args.Vma!.Mm, args.Start + (i << PhysicalMemory.PageShift), n);
                i += (ulong)n - 1;
                continue;
            }
            if (failAlloc || CopyToNewSystemPage(spfn, out ulong dpfn) != Errno.Ok)
                return ReleaseDestinations(args, i);
            ForgetMigrated(args.Vma!.Mm, args.Start + (i << PhysicalMemory.PageShift), 1);
            args.Dst![i] = MigratePfn.From(dpfn) | write;
        }
        return Errno.Ok;
    }

    // The error path of CopyToSystem: unlocks and frees every destination chosen before entry `upTo`, and clears Dst.
    private Errno ReleaseDestinations(MigrateVma args, ulong upTo)
    {
        var mem = Kernel.Memory;
        for (ulong i = 0; i < upTo; i++)
        {
            ulong dst = args.Dst![i];
            if (MigratePfn.ToPfn(dst) is not ulong d)
                continue;
            int frames = (dst & MigratePfn.Compound) != 0 ? HugePages : 1;
            for (int j = 0; j < frames; j++)
            {
                mem.UnlockPage(d + (ulong)j);
                mem.PutPage(d + (ulong)j);
            }
            args.Dst[i] = 0;
        }
        return Errno.ENOMEM;
    }

    /// <inheritdoc />
    public override string ToString() => $"hmm_dmirror{Minor}";

    /// <summary>zone_device_data of a mirror device page: its backing system page and the mirror that put it there.</summary>
    private sealed record DevicePage(ulong Backing, MirrorFile Owner);
}
