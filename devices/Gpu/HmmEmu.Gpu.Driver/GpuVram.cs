using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Gpu.Driver;

/// <summary>
/// The GPU's VRAM as the kernel sees it (device-private memory registered with memremap_pages) and the driver's
/// allocator over it: a bitmap of free pages, and per 2 MiB block a use count and a last-use tick that picks the
/// eviction victim (least recently used, lowest block on ties; a counter, never a clock).
/// </summary>
/// <remarks>Lock: <c>_lock</c> (spinlock) guards the bitmap and the block state; never sleeps under it.</remarks>
internal sealed class GpuVram : IDevicePagemapOps
{
    private static readonly TraceEventType s_usageCounter = TraceEventType.Counter("gpu", "vram", "used_pages");

    /// <summary>Pages per block (2 MiB), the unit of eviction.</summary>
    public const int BlockPages = 512;

    private readonly GpuDevice _device;
    private readonly KSpinLock _lock;
    private readonly ulong[] _freeMap;      // bit set = free; under _lock
    private readonly int[] _blockUsed;      // under _lock
    private readonly long[] _blockTick;     // under _lock
    private long _tick;                     // under _lock
    private int _free;                      // under _lock
    private int _firstFreeWord;             // no free page below this bitmap word; under _lock

    public GpuVram(GpuDevice device, int pages)
    {
        _device = device;
        Pages = pages;
        _lock = new KSpinLock(device.Kernel, "gpu.vram");
        _freeMap = new ulong[(pages + 63) / 64];
        for (int i = 0; i < pages; i++)
            _freeMap[i >> 6] |= 1UL << (i & 63);
        _free = pages;
        _blockUsed = new int[(pages + BlockPages - 1) / BlockPages];
        _blockTick = new long[_blockUsed.Length];
        Pagemap = DevicePagemap.Register(device.Kernel, MemoryType.DevicePrivate, pages, device, this);
    }

    /// <summary>The registered device memory.</summary>
    public DevicePagemap Pagemap { get; }

    /// <summary>VRAM pages.</summary>
    public int Pages { get; }

    /// <summary>Free VRAM pages now.</summary>
    public int FreePages
    {
        get
        {
            using (_lock.Scoped())
                return _free;
        }
    }

    /// <summary>Samples the pages in use into the trace's "gpu.vram" counter (after a migration or an eviction). Never sleeps.</summary>
    /// <remarks>Reads the free count without the lock: a sample, not a decision, and no lock traffic when nobody listens.</remarks>
    public void TraceUsage() => _device.Kernel.Trace.Record(s_usageCounter, (ulong)(Pages - Volatile.Read(ref _free)));

    /// <summary>Whether <paramref name="pfn"/> is one of our VRAM pages.</summary>
    public bool Owns(ulong pfn) => Pagemap.Contains(pfn);

    /// <summary>The VRAM byte offset of page <paramref name="pfn"/>.</summary>
    public ulong OffsetOf(ulong pfn) => (pfn - Pagemap.FirstPfn) << PhysicalMemory.PageShift;

    /// <summary>Takes the lowest free page (amortised O(1): the scan starts at the first word with a free page) and hands it to the kernel (referenced and locked). False if VRAM is full. Never sleeps.</summary>
    public bool TryAlloc(out ulong pfn)
    {
        pfn = 0;
        int index = -1;
        using (_lock.Scoped())
        {
            for (int w = _firstFreeWord; w < _freeMap.Length; w++)
            {
                if (_freeMap[w] == 0)
                    continue;
                int bit = System.Numerics.BitOperations.TrailingZeroCount(_freeMap[w]);
                _freeMap[w] &= ~(1UL << bit);
                index = (w << 6) + bit;
                _firstFreeWord = w;
                break;
            }
            if (index < 0)
            {
                _firstFreeWord = _freeMap.Length;
                return false;
            }
            _free--;
            int block = index / BlockPages;
            _blockUsed[block]++;
            _blockTick[block] = ++_tick;
        }
        pfn = Pagemap.FirstPfn + (ulong)index;
        Pagemap.InitPage(pfn);
        return true;
    }

    /// <summary>Marks the block of <paramref name="pfn"/> as just used (a GPU fault mapped it). Never sleeps.</summary>
    public void Touch(ulong pfn)
    {
        int block = (int)(pfn - Pagemap.FirstPfn) / BlockPages;
        using (_lock.Scoped())
            _blockTick[block] = ++_tick;
    }

    /// <summary>The first pfn and page count of the least recently used block that holds pages, or false. Never sleeps.</summary>
    public bool TryPickVictim(out ulong firstPfn, out int pages)
    {
        firstPfn = 0;
        pages = 0;
        int victim = -1;
        using (_lock.Scoped())
        {
            for (int b = 0; b < _blockUsed.Length; b++)
            {
                if (_blockUsed[b] > 0 && (victim < 0 || _blockTick[b] < _blockTick[victim]))
                    victim = b;
            }
            if (victim < 0)
                return false;
            _blockTick[victim] = ++_tick;   // do not pick it again while it is being evicted
        }
        firstPfn = Pagemap.FirstPfn + (ulong)(victim * BlockPages);
        pages = Math.Min(BlockPages, Pages - (victim * BlockPages));
        return true;
    }

    /// <summary>Number of 2 MiB blocks.</summary>
    public int Blocks => _blockUsed.Length;

    /// <summary>Whether block <paramref name="block"/> holds pages in use, with its first pfn and page count. Never sleeps.</summary>
    public bool BlockInUse(int block, out ulong firstPfn, out int pages)
    {
        firstPfn = Pagemap.FirstPfn + (ulong)(block * BlockPages);
        pages = Math.Min(BlockPages, Pages - (block * BlockPages));
        using (_lock.Scoped())
            return _blockUsed[block] > 0;
    }

    /// <inheritdoc />
    public VmFaultResult MigrateToRam(DeviceFault fault) => _device.Migrator.MigrateToRam(fault);

    /// <inheritdoc />
    public void PageFree(ulong pfn)
    {
        int index = (int)(pfn - Pagemap.FirstPfn);
        using (_lock.Scoped())
        {
            _freeMap[index >> 6] |= 1UL << (index & 63);
            _firstFreeWord = Math.Min(_firstFreeWord, index >> 6);
            _free++;
            _blockUsed[index / BlockPages]--;
        }
    }
}
