using HmmEmu.Annotations;
using HmmEmu.Kernel.Memory;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Bus;

/// <summary>
/// What a driver gets for a function it is bound to (struct pci_dev as the driver sees it): the function's BARs,
/// its interrupt vectors, and DMA-visible memory. Nothing else of the device is reachable from here. A handle lives
/// for one binding: after <see cref="IPciDriver.Remove"/> returns, it no longer hands out interrupts or memory.
/// </summary>
public sealed class PciDev
{
    private readonly PciBus _bus;
    private readonly HostKernel _kernel;
    private readonly Lock _lock = new();
    private readonly IrqHandler?[] _handlers;       // under _lock
    private readonly string?[] _handlerNames;       // under _lock
    private readonly int[] _inFlight;               // under _lock: handlers running now, per vector
    private readonly List<DmaCoherentBuffer> _coherent = [];          // under _lock, allocation order
    private readonly SortedDictionary<ulong, int> _mapped = [];      // under _lock: pfn -> map count
    private readonly SimWaitQueue _irqIdle;
    private volatile bool _bound = true;

    internal PciDev(PciBus bus, PciFunction function, IPciDriver driver)
    {
        _bus = bus;
        _kernel = bus.Kernel;
        Function = function;
        Driver = driver;
        _handlers = new IrqHandler?[function.VectorCount];
        _handlerNames = new string?[function.VectorCount];
        _inFlight = new int[function.VectorCount];
        _irqIdle = new SimWaitQueue(_kernel.Scheduler, $"synchronize_irq slot {function.Slot}");
    }

    /// <summary>The slot the function is plugged into.</summary>
    public int Slot => Function.Slot;

    /// <summary>PCI vendor id.</summary>
    public ushort VendorId => Function.Device.VendorId;

    /// <summary>PCI device id.</summary>
    public ushort DeviceId => Function.Device.DeviceId;

    /// <summary>PCI class code.</summary>
    public uint ClassCode => Function.Device.ClassCode;

    /// <summary>How many interrupt vectors the function has.</summary>
    public int VectorCount => Function.VectorCount;

    /// <summary>How many BAR slots the function has (some may be unimplemented).</summary>
    public int BarCount => Function.Bars.Length;

    /// <summary>The driver this handle was given to.</summary>
    public IPciDriver Driver { get; }

    /// <summary>Driver-private data (pci_set_drvdata / pci_get_drvdata).</summary>
    public object? DriverData { get; set; }

    /// <summary>Whether the driver is still bound (false once remove has finished or probe failed).</summary>
    public bool IsBound => _bound;

    /// <summary>Coherent DMA buffers the driver holds now.</summary>
    public int CoherentBufferCount
    {
        get { lock (_lock) return _coherent.Count; }
    }

    /// <summary>Streaming DMA mappings (<see cref="DmaMapPage"/>) the driver holds now.</summary>
    public int MappedPageCount
    {
        get
        {
            lock (_lock)
            {
                int n = 0;
                foreach (var c in _mapped.Values)
                    n += c;
                return n;
            }
        }
    }

    internal PciFunction Function { get; }

    /// <summary>
    /// Maps BAR <paramref name="index"/> (pci_iomap). Returns null for an unimplemented BAR. Throws for an index the
    /// function does not have.
    /// </summary>
    public PciBar? Bar(int index)
    {
        if ((uint)index >= (uint)Function.Bars.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index,
                $"Function in slot {Slot} has {Function.Bars.Length} BAR(s); BAR {index} does not exist. Check BarCount.");
        }
        return Function.Bars[index];
    }

    /// <summary>
    /// Registers <paramref name="handler"/> for <paramref name="vector"/> (request_irq). EINVAL if the function has no
    /// such vector, EBUSY if it already has a handler. The handler runs in interrupt context on the bus's interrupt
    /// thread, never on the thread that raised it. May sleep.
    /// </summary>
    public Errno RequestIrq(int vector, IrqHandler handler, string name)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentException.ThrowIfNullOrEmpty(name);
        EnsureBound("request_irq");
        _kernel.MightSleep($"request_irq({name})");
        if ((uint)vector >= (uint)_handlers.Length)
            return Errno.EINVAL;
        lock (_lock)
        {
            if (_handlers[vector] is not null)
                return Errno.EBUSY;
            _handlers[vector] = handler;
            _handlerNames[vector] = name;
        }
        return Errno.Ok;
    }

    /// <summary>
    /// Unregisters the handler of <paramref name="vector"/> (free_irq) and waits until a running invocation of it has
    /// returned. Interrupts for the vector that arrive afterwards are counted as spurious. May sleep; must not be
    /// called from the handler itself.
    /// </summary>
    public void FreeIrq(int vector)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(vector);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(vector, _handlers.Length);
        _kernel.MightSleep($"free_irq({vector})");
        _bus.AssertNotOnInterruptThread($"free_irq({vector}) on slot {Slot}");
        lock (_lock)
        {
            if (_handlers[vector] is null)
            {
                _kernel.Warn($"Trying to free already-free IRQ: vector {vector} of slot {Slot} has no handler. " +
                    "Free each vector once, after a successful RequestIrq.");
                return;
            }
            _handlers[vector] = null;
            _handlerNames[vector] = null;
        }
        WaitForHandlers(vector);
    }

    /// <summary>Waits until no handler of <paramref name="vector"/> is running (synchronize_irq). May sleep.</summary>
    public void SynchronizeIrq(int vector)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(vector);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(vector, _handlers.Length);
        _kernel.MightSleep($"synchronize_irq({vector})");
        _bus.AssertNotOnInterruptThread($"synchronize_irq({vector}) on slot {Slot}");
        WaitForHandlers(vector);
    }

    /// <summary>
    /// Allocates <paramref name="bytes"/> (at most 2 MiB) of zeroed, physically contiguous memory that the CPU and the
    /// device share (dma_alloc_coherent). ENOMEM if no such block is free, EINVAL for a size of 0 or above 2 MiB.
    /// The bus frees it when the driver is removed, if the driver has not. May sleep unless <paramref name="gfp"/>
    /// forbids it.
    /// </summary>
    [MayReclaim(FlagsParameter = nameof(gfp), ReclaimFlags = (long)Gfp.DirectReclaim)]
    public Errno AllocCoherent(ulong bytes, out DmaCoherentBuffer? buffer, Gfp gfp = Gfp.Kernel)
    {
        buffer = null;
        EnsureBound("dma_alloc_coherent");
        if (bytes == 0 || bytes > PciBus.MaxCoherentBytes)
            return Errno.EINVAL;
        ulong pages = (bytes + PhysicalMemory.PageSize - 1) >> PhysicalMemory.PageShift;
        int order = 0;
        while ((1UL << order) < pages)
            order++;
        var err = _kernel.Memory.AllocContiguous(order, gfp | Gfp.Zero, out ulong pfn);
        if (err != Errno.Ok)
            return err;
        var b = new DmaCoherentBuffer(_kernel.Memory, this, pfn, order, (int)bytes);
        lock (_lock)
            _coherent.Add(b);
        _bus.AddDmaPages(b.Pages);
        buffer = b;
        return Errno.Ok;
    }

    /// <summary>Frees a buffer from <see cref="AllocCoherent"/> (dma_free_coherent). The device must no longer use it.</summary>
    public void FreeCoherent(DmaCoherentBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        bool owned;
        lock (_lock)
            owned = _coherent.Remove(buffer);
        if (!owned)
        {
            throw new KernelRuleViolationException(
                $"DMA-API: slot {Slot} frees {buffer}, which it does not hold (double free, or a buffer of another " +
                "device or of a previous binding). Free each buffer once, through the handle that allocated it.");
        }
        Release(buffer);
    }

    /// <summary>
    /// Maps an existing RAM page for device access (dma_map_page) and returns its bus address in
    /// <paramref name="busAddress"/>. The mapping holds a page reference until <see cref="DmaUnmapPage"/>. Throws for
    /// a pfn that is not an allocated RAM frame; the shared zero page may be mapped, for the device to read. Never sleeps.
    /// </summary>
    public Errno DmaMapPage(ulong pfn, out ulong busAddress)
    {
        busAddress = 0;
        EnsureBound("dma_map_page");
        var memory = _kernel.Memory;
        // The shared zero page may be mapped (as in Linux, for the device to read; a DMA write to it is refused).
        if (!memory.IsValidPfn(pfn) || !memory.TryGetPage(pfn))
        {
            throw new KernelRuleViolationException(
                $"dma_map_page on pfn 0x{pfn:x}, which is not an allocated RAM page (free, out of range or device " +
                "memory). Map only pages you hold a reference on; device-private memory is reached by its device, not by DMA.");
        }
        lock (_lock)
        {
            _mapped.TryGetValue(pfn, out int c);
            _mapped[pfn] = c + 1;
        }
        _bus.AddDmaPages(1);
        busAddress = pfn << PhysicalMemory.PageShift;
        return Errno.Ok;
    }

    /// <summary>Unmaps a mapping made by <see cref="DmaMapPage"/> (dma_unmap_page) and drops its page reference.</summary>
    [DmaUnmap]
    public void DmaUnmapPage(ulong busAddress)
    {
        ulong pfn = busAddress >> PhysicalMemory.PageShift;
        lock (_lock)
        {
            if ((busAddress & (PhysicalMemory.PageSize - 1)) != 0 || !_mapped.TryGetValue(pfn, out int c))
            {
                throw new KernelRuleViolationException(
                    $"DMA-API: slot {Slot} unmaps bus address 0x{busAddress:x}, which it has not mapped. Pass the exact " +
                    "address DmaMapPage returned, once per mapping.");
            }
            if (c == 1)
                _mapped.Remove(pfn);
            else
                _mapped[pfn] = c - 1;
        }
        _kernel.Memory.PutPage(pfn);
        _bus.AddDmaPages(-1);
    }

    /// <summary>Resets the function (pcie_flr): see <see cref="PciBus.FunctionLevelReset"/>. May sleep.</summary>
    public void FunctionLevelReset() => _bus.FunctionLevelReset(Slot);

    /// <inheritdoc />
    public override string ToString() => $"pci slot {Slot} ({VendorId:x4}:{DeviceId:x4}) bound to {Driver.Name}";

    // Interrupt delivery: returns the handler and marks it running, or null (spurious). Caller is the interrupt thread.
    internal IrqHandler? BeginIrq(int vector)
    {
        lock (_lock)
        {
            var h = _handlers[vector];
            if (h is not null)
                _inFlight[vector]++;
            return h;
        }
    }

    internal void EndIrq(int vector)
    {
        lock (_lock)
            _inFlight[vector]--;
        _irqIdle.WakeAll();
    }

    /// <summary>
    /// Releases what the driver still holds after remove (or a failed probe), interrupts first so that no handler
    /// runs on freed memory. Caller holds the bus's device lock. May sleep.
    /// </summary>
    internal void ReleaseAll()
    {
        for (int v = 0; v < _handlers.Length; v++)
        {
            lock (_lock)
            {
                _handlers[v] = null;
                _handlerNames[v] = null;
            }
            WaitForHandlers(v);
        }
        _bound = false;
        DmaCoherentBuffer[] buffers;
        KeyValuePair<ulong, int>[] mappings;
        lock (_lock)
        {
            buffers = [.. _coherent];
            _coherent.Clear();
            mappings = [.. _mapped];
            _mapped.Clear();
        }
        foreach (var b in buffers)
            Release(b);
        if (mappings.Length > 0)
        {
            int total = 0;
            foreach (var (pfn, count) in mappings)
            {
                for (int i = 0; i < count; i++)
                    _kernel.Memory.PutPage(pfn);
                total += count;
            }
            _bus.AddDmaPages(-total);
            _kernel.Warn($"DMA-API: driver {Driver.Name} left {total} streaming DMA mapping(s) on slot {Slot} when it was " +
                $"released (first at bus address 0x{mappings[0].Key << PhysicalMemory.PageShift:x}). Unmap every DmaMapPage in remove.");
        }
    }

    private void Release(DmaCoherentBuffer buffer)
    {
        if (!buffer.MarkFreed())
            return;
        for (int i = 0; i < buffer.Pages; i++)
            _kernel.Memory.PutPage(buffer.FirstPfn + (ulong)i);
        _bus.AddDmaPages(-buffer.Pages);
    }

    private void WaitForHandlers(int vector) =>
        _irqIdle.WaitUntil((this, vector), static s => s.Item1.InFlight(s.vector) == 0);

    private int InFlight(int vector)
    {
        lock (_lock)
            return _inFlight[vector];
    }

    private void EnsureBound(string what)
    {
        if (!_bound)
        {
            throw new KernelRuleViolationException(
                $"{what} on slot {Slot} through a handle whose driver ({Driver.Name}) was already removed (or whose probe " +
                "failed). A PciDev is valid only between a successful Probe and the end of Remove.");
        }
    }
}
