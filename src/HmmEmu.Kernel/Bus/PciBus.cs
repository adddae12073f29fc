using HmmEmu.Kernel.Locking;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Bus;

/// <summary>
/// A PCI-like bus: device functions are plugged into slots, enumerated in slot order, and bound to registered drivers
/// by (vendor, device) id; drivers get a <see cref="PciDev"/> handle. Interrupts a function raises are queued and
/// delivered, in order, by the bus's interrupt thread (a daemon simulated thread) to the handler the driver
/// registered, in interrupt context; raising never runs the handler on the raiser's thread.
/// </summary>
public sealed class PciBus : IDisposable
{
    /// <summary>Slots per bus (device numbers 0..31).</summary>
    public const int SlotCount = 32;

    /// <summary>The largest coherent DMA allocation (2 MiB: one naturally aligned block of the page allocator).</summary>
    public const ulong MaxCoherentBytes = 2UL << 20;

    private static readonly TraceEventType s_plugEvent = new("pci", "plug", "slot", "vendor", "device");
    private static readonly TraceEventType s_probeEvent = new("pci", "probe", "slot", "errno");
    private static readonly TraceEventType s_removeEvent = new("pci", "remove", "slot");
    private static readonly TraceEventType s_flrEvent = new("pci", "flr", "slot", "purged");
    private static readonly TraceEventType s_irqEvent = new("pci", "irq", "slot", "vector", "seq");
    private static readonly TraceEventType s_spuriousEvent = new("pci", "irq_spurious", "slot", "vector", "seq");

    private readonly Lock _lock = new();
    private readonly KMutex _deviceLock;
    private readonly PciFunction?[] _slots = new PciFunction?[SlotCount];    // under _lock
    private readonly List<IPciDriver> _drivers = [];                         // under _lock, registration order
    private readonly Queue<IrqMessage> _irqQueue = new();                    // under _lock
    private readonly SimWaitQueue _irqWork;
    private readonly SimWaitQueue _irqProgress;
    private readonly SimThread _irqThread;
    private long _raised;           // under _lock: sequence of the last queued message
    private long _deliveringSeq;    // under _lock: message being delivered now, or 0
    private long _delivered;
    private long _spurious;
    private long _unhandled;
    private long _dropped;
    private long _dmaPages;
    private bool _stopping;         // under _lock

    /// <summary>Creates an empty bus on <paramref name="kernel"/> and starts its interrupt thread.</summary>
    public PciBus(HostKernel kernel, string name = "pci0")
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentException.ThrowIfNullOrEmpty(name);
        Kernel = kernel;
        Name = name;
        _deviceLock = new KMutex(kernel, "pci.device_lock");
        _irqWork = new SimWaitQueue(kernel.Scheduler, $"irq/{name} idle");
        _irqProgress = new SimWaitQueue(kernel.Scheduler, $"irq/{name} progress");
        _irqThread = kernel.Scheduler.Spawn($"irq/{name}", IrqThreadLoop, SimThreadKind.Kernel, daemon: true);
    }

    /// <summary>The bus's name.</summary>
    public string Name { get; }

    /// <summary>Interrupts delivered to a handler.</summary>
    public long DeliveredInterrupts => Interlocked.Read(ref _delivered);

    /// <summary>Interrupts that found no handler (no driver bound, or the vector not requested) and were dropped.</summary>
    public long SpuriousInterrupts => Interlocked.Read(ref _spurious);

    /// <summary>Interrupts whose handler returned <see cref="IrqReturn.None"/>.</summary>
    public long UnhandledInterrupts => Interlocked.Read(ref _unhandled);

    /// <summary>Interrupts dropped without delivery: raised by an unplugged function, after dispose, or purged by a reset.</summary>
    public long DroppedInterrupts => Interlocked.Read(ref _dropped);

    /// <summary>Pages currently handed to drivers as coherent DMA memory or streaming mappings, over all functions.</summary>
    public long DmaPagesInUse => Interlocked.Read(ref _dmaPages);

    internal HostKernel Kernel { get; }

    /// <summary>
    /// Plugs <paramref name="device"/> into <paramref name="slot"/>, hands it its interrupt sink, and probes the first
    /// registered driver that matches it. Throws if the slot is taken. May sleep.
    /// </summary>
    public void Plug(int slot, IPciDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        CheckSlot(slot);
        if (device.Bars is null || device.VectorCount < 0)
            throw new ArgumentException($"Device {device.VendorId:x4}:{device.DeviceId:x4} must declare a BAR list and a non-negative vector count.", nameof(device));
        Kernel.MightSleep("pci plug");
        using (_deviceLock.Scoped())
        {
            var function = new PciFunction(this, slot, device);
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_stopping, this);
                if (_slots[slot] is { } taken)
                {
                    throw new InvalidOperationException(
                        $"Slot {slot} of {Name} already holds {taken}. Plug each function into a free slot, or Unplug first.");
                }
                _slots[slot] = function;
            }
            Kernel.Trace.Record(s_plugEvent, (ulong)slot, device.VendorId, device.DeviceId);
            device.Attach(function);
            foreach (var driver in DriversSnapshot())
            {
                if (Matches(driver, function) && TryProbe(function, driver))
                    break;
            }
        }
    }

    /// <summary>Removes the function in <paramref name="slot"/>: its driver is removed first. Its later interrupts are dropped. May sleep.</summary>
    public void Unplug(int slot)
    {
        CheckSlot(slot);
        Kernel.MightSleep("pci unplug");
        using (_deviceLock.Scoped())
        {
            var function = FunctionAt(slot) ?? throw new InvalidOperationException($"Slot {slot} of {Name} is empty; nothing to unplug.");
            if (function.Binding is not null)
                Unbind(function);
            function.IsUnplugged = true;
            lock (_lock)
                _slots[slot] = null;
            Purge(function);
        }
    }

    /// <summary>The plugged-in functions in slot order (enumeration).</summary>
    public IReadOnlyList<PciFunctionInfo> Enumerate()
    {
        var list = new List<PciFunctionInfo>();
        lock (_lock)
        {
            foreach (var f in _slots)
            {
                if (f is not null)
                    list.Add(f.Info);
            }
        }
        return list;
    }

    /// <summary>
    /// Registers <paramref name="driver"/> (pci_register_driver) and probes it against every unbound matching function,
    /// in slot order. Returns how many functions it bound to. May sleep.
    /// </summary>
    public int RegisterDriver(IPciDriver driver)
    {
        ArgumentNullException.ThrowIfNull(driver);
        ArgumentNullException.ThrowIfNull(driver.IdTable);
        Kernel.MightSleep($"pci_register_driver({driver.Name})");
        using (_deviceLock.Scoped())
        {
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_stopping, this);
                if (_drivers.Contains(driver))
                    throw new InvalidOperationException($"Driver {driver.Name} is already registered with {Name}. Register a driver once.");
                _drivers.Add(driver);
            }
            int bound = 0;
            foreach (var function in FunctionsSnapshot())
            {
                if (function.Binding is null && Matches(driver, function) && TryProbe(function, driver))
                    bound++;
            }
            return bound;
        }
    }

    /// <summary>Unregisters <paramref name="driver"/> (pci_unregister_driver), removing it from every function it is bound to, in slot order. May sleep.</summary>
    public void UnregisterDriver(IPciDriver driver)
    {
        ArgumentNullException.ThrowIfNull(driver);
        Kernel.MightSleep($"pci_unregister_driver({driver.Name})");
        using (_deviceLock.Scoped())
        {
            lock (_lock)
            {
                if (!_drivers.Remove(driver))
                    throw new InvalidOperationException($"Driver {driver.Name} is not registered with {Name}; register it before unregistering.");
            }
            foreach (var function in FunctionsSnapshot())
            {
                if (function.Binding is { } dev && ReferenceEquals(dev.Driver, driver))
                    Unbind(function);
            }
        }
    }

    /// <summary>
    /// Function-level reset of the function in <paramref name="slot"/>: the device's reset hook runs (registers return
    /// to their reset values), and its interrupts still queued for delivery are discarded. The driver stays bound.
    /// May sleep.
    /// </summary>
    public void FunctionLevelReset(int slot)
    {
        CheckSlot(slot);
        Kernel.MightSleep($"pci FLR slot {slot}");
        var function = FunctionAt(slot) ?? throw new InvalidOperationException($"Slot {slot} of {Name} is empty; there is no function to reset.");
        function.Device.FunctionLevelReset();
        int purged = Purge(function);
        Kernel.Trace.Record(s_flrEvent, (ulong)slot, (ulong)purged);
    }

    /// <summary>
    /// Waits until every interrupt raised before this call has been delivered (its handler returned) or dropped.
    /// May sleep; must not be called from an interrupt handler.
    /// </summary>
    public void SynchronizeInterrupts()
    {
        Kernel.MightSleep("pci synchronize interrupts");
        AssertNotOnInterruptThread("SynchronizeInterrupts");
        long target;
        lock (_lock)
            target = _raised;
        _irqProgress.WaitUntil((this, target), static s => s.Item1.CompletedThrough() >= s.target);
    }

    /// <summary>Stops the interrupt thread once the queued interrupts are delivered; later interrupts are dropped.</summary>
    public void Dispose()
    {
        lock (_lock)
            _stopping = true;
        _irqWork.WakeAll();
    }

    /// <inheritdoc />
    public override string ToString() => $"PciBus {Name}";

    // Hot path: called by a device (any thread). No allocation beyond the queue's amortised growth.
    internal void Enqueue(PciFunction function, int vector)
    {
        lock (_lock)
        {
            if (_stopping || function.IsUnplugged)
            {
                _dropped++;
                return;
            }
            _irqQueue.Enqueue(new IrqMessage(function, vector, ++_raised));
        }
        _irqWork.WakeAll();
    }

    internal void AddDmaPages(long delta) => Interlocked.Add(ref _dmaPages, delta);

    internal void AssertNotOnInterruptThread(string what)
    {
        if (ReferenceEquals(Scheduler.CurrentThread, _irqThread))
        {
            throw new KernelRuleViolationException(
                $"{what} was called from an interrupt handler of {Name}; it waits for handlers to finish and would wait for " +
                "itself. Call it from process context (probe, remove, a work item).");
        }
    }

    private static bool Matches(IPciDriver driver, PciFunction function)
    {
        foreach (var id in driver.IdTable)
        {
            if (id.VendorId == function.Device.VendorId && id.DeviceId == function.Device.DeviceId)
                return true;
        }
        return false;
    }

    private static void CheckSlot(int slot)
    {
        if ((uint)slot >= SlotCount)
            throw new ArgumentOutOfRangeException(nameof(slot), slot, $"A bus has slots 0..{SlotCount - 1}.");
    }

    private PciFunction? FunctionAt(int slot)
    {
        lock (_lock)
            return _slots[slot];
    }

    private PciFunction[] FunctionsSnapshot()
    {
        lock (_lock)
            return [.. _slots.Where(f => f is not null).Select(f => f!)];
    }

    private IPciDriver[] DriversSnapshot()
    {
        lock (_lock)
            return [.. _drivers];
    }

    // Caller holds _deviceLock. May sleep.
    private bool TryProbe(PciFunction function, IPciDriver driver)
    {
        _deviceLock.AssertHeld("pci probe");
        var dev = new PciDev(this, function, driver);
        function.Binding = dev;
        Errno err;
        try
        {
            err = driver.Probe(dev);
        }
        catch
        {
            function.Binding = null;
            dev.ReleaseAll();
            throw;
        }
        Kernel.Trace.Record(s_probeEvent, (ulong)function.Slot, (ulong)err);
        if (err == Errno.Ok)
            return true;
        function.Binding = null;
        dev.ReleaseAll();
        return false;
    }

    // Caller holds _deviceLock. May sleep.
    private void Unbind(PciFunction function)
    {
        _deviceLock.AssertHeld("pci remove");
        var dev = function.Binding!;
        Kernel.Trace.Record(s_removeEvent, (ulong)function.Slot);
        try
        {
            dev.Driver.Remove(dev);
        }
        finally
        {
            dev.ReleaseAll();
            function.Binding = null;
        }
    }

    /// <summary>Discards the queued interrupts of <paramref name="function"/>; returns how many.</summary>
    private int Purge(PciFunction function)
    {
        int purged = 0;
        lock (_lock)
        {
            int n = _irqQueue.Count;
            for (int i = 0; i < n; i++)
            {
                var m = _irqQueue.Dequeue();
                if (ReferenceEquals(m.Function, function))
                    purged++;
                else
                    _irqQueue.Enqueue(m);
            }
            _dropped += purged;
        }
        if (purged > 0)
            _irqProgress.WakeAll();
        return purged;
    }

    private long CompletedThrough()
    {
        lock (_lock)
        {
            long through = _irqQueue.Count > 0 ? _irqQueue.Peek().Sequence - 1 : _raised;
            if (_deliveringSeq != 0)
                through = Math.Min(through, _deliveringSeq - 1);
            return through;
        }
    }

    private bool HasIrqOrStopping()
    {
        lock (_lock)
            return _irqQueue.Count > 0 || _stopping;
    }

    private void IrqThreadLoop()
    {
        while (true)
        {
            _irqWork.WaitUntil(this, static b => b.HasIrqOrStopping());
            IrqMessage m;
            lock (_lock)
            {
                if (_irqQueue.Count == 0)
                    return; // stopping and drained
                m = _irqQueue.Dequeue();
                _deliveringSeq = m.Sequence;
            }
            // No finally: a handler that throws fails the simulation, and waiters must not see its interrupt as
            // delivered (they would let Run return before the failure is recorded); the scheduler unwinds them.
            Deliver(m);
            lock (_lock)
                _deliveringSeq = 0;
            _irqProgress.WakeAll();
        }
    }

    // Runs on the interrupt thread. The handler runs in interrupt context: sleeping in it is reported by the lock checker.
    private void Deliver(IrqMessage m)
    {
        var dev = m.Function.Binding;
        var handler = dev?.BeginIrq(m.Vector);
        if (handler is null)
        {
            Interlocked.Increment(ref _spurious);
            Kernel.Trace.Record(s_spuriousEvent, (ulong)m.Function.Slot, (ulong)m.Vector, (ulong)m.Sequence);
            return;
        }
        Kernel.Trace.Record(s_irqEvent, (ulong)m.Function.Slot, (ulong)m.Vector, (ulong)m.Sequence);
        IrqReturn ret;
        using (Kernel.EnterInterrupt())
            ret = handler(m.Vector);
        Interlocked.Increment(ref _delivered);
        if (ret == IrqReturn.None)
            Interlocked.Increment(ref _unhandled);
        // Not in a finally, for the reason given in IrqThreadLoop: a failed handler stays "running".
        dev!.EndIrq(m.Vector);
    }

    private readonly record struct IrqMessage(PciFunction Function, int Vector, long Sequence);
}
