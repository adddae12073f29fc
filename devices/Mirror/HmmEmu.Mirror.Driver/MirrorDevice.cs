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
public sealed class MirrorDevice : IDevicePagemapOps
{
    /// <summary>Device pages per device (128 MiB).</summary>
    public const int DevicePages = 32768;

    private readonly KSpinLock _freeLock;
    private readonly Stack<ulong> _free = new();

    /// <summary>
    /// Creates device <paramref name="minor"/> on <paramref name="kernel"/> and registers its memory: device-private
    /// (as test_hmm's devices 0 and 1) or device-coherent (devices 2 and 3).
    /// </summary>
    public MirrorDevice(HostKernel kernel, int minor, MemoryType memoryType = MemoryType.DevicePrivate)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        Kernel = kernel;
        Minor = minor;
        _freeLock = new KSpinLock(kernel, "dmirror.device.lock");
        Pagemap = DevicePagemap.Register(kernel, memoryType, DevicePages, this, this);
        for (ulong pfn = Pagemap.FirstPfn + (ulong)DevicePages; pfn-- > Pagemap.FirstPfn;)
            _free.Push(pfn);                           // popped in ascending order
    }

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
                return _free.Count;
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
            file = null;
        return err;
    }

    /// <summary>
    /// Allocates a device page for <paramref name="owner"/> (dmirror_devmem_alloc_page): locked, one reference, with a
    /// zeroed backing system page. ENOMEM when device memory or the backing page runs out. May sleep.
    /// </summary>
    internal Errno AllocPage(MirrorFile owner, out ulong pfn)
    {
        // Device-private memory is simulated by a backing system page; coherent memory the CPU can touch directly.
        ulong backing = 0;
        pfn = 0;
        if (!IsCoherent)
        {
            var err = Kernel.Memory.AllocPage(Gfp.HighUser | Gfp.Zero, out backing);
            if (err != Errno.Ok)
                return err;
        }
        using (_freeLock.Scoped())
        {
            if (_free.Count == 0)
            {
                if (backing != 0)
                    Kernel.Memory.PutPage(backing);
                return Errno.ENOMEM;
            }
            pfn = _free.Pop();
        }
        Pagemap.InitPage(pfn);
        Pagemap.SetZoneDeviceData(pfn, new DevicePage(IsCoherent ? pfn : backing, owner));
        return Errno.Ok;
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
        var m = DeviceMigration.Range(Kernel, Pagemap.FirstPfn, DevicePages);
        var result = Errno.Ok;
        for (int i = 0; i < DevicePages; i++)
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
        using (_freeLock.Scoped())
            _free.Push(pfn);
    }

    /// <summary>dmirror_devmem_fault: migrates the one faulting page back to system memory.</summary>
    public VmFaultResult MigrateToRam(DeviceFault fault)
    {
        var owner = (Pagemap.GetZoneDeviceData(fault.Page) as DevicePage)?.Owner;
        var args = new MigrateVma
        {
            Vma = fault.Vma,
            Start = fault.Address,
            End = fault.Address + PhysicalMemory.PageSize,
            Src = new ulong[1],
            Dst = new ulong[1],
            PgmapOwner = this,
            Flags = MigrateSelect.DevicePrivate,
            FaultPage = fault.Page,
        };
        if (Migrate.VmaSetup(args) != Errno.Ok)
            return VmFaultResult.SigBus;
        var err = CopyToSystem(args, owner);
        Migrate.VmaPages(args);
        Migrate.VmaFinalize(args);
        return err == Errno.Ok ? VmFaultResult.Ok : VmFaultResult.Oom;
    }

    /// <summary>
    /// dmirror_devmem_fault_alloc_and_copy: for each selected device page, a locked system page with its bytes, and
    /// the owning mirror's entry for the address erased. Returns ENOMEM if a system page could not be had (that
    /// entry is then left out and stays on the device). May sleep.
    /// </summary>
    internal Errno CopyToSystem(MigrateVma args, MirrorFile? onlyOwner)
    {
        var mem = Kernel.Memory;
        var result = Errno.Ok;
        for (ulong i = 0; i < args.NPages; i++)
        {
            ulong src = args.Src![i];
            if ((src & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(src) is not ulong spfn)
                continue;
            if (CopyToNewSystemPage(spfn, out ulong dpfn) != Errno.Ok)
            {
                result = Errno.ENOMEM;
                continue;
            }
            var owner = (Pagemap.GetZoneDeviceData(spfn) as DevicePage)?.Owner ?? onlyOwner;
            owner?.ForgetPage(args.Start + (i << PhysicalMemory.PageShift));
            args.Dst![i] = MigratePfn.From(dpfn) | (src & MigratePfn.Write);
        }
        return result;
    }

    /// <inheritdoc />
    public override string ToString() => $"hmm_dmirror{Minor}";

    /// <summary>zone_device_data of a mirror device page: its backing system page and the mirror that put it there.</summary>
    private sealed record DevicePage(ulong Backing, MirrorFile Owner);
}
