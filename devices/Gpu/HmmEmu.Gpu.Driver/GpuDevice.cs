using System.Runtime.CompilerServices;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Simulation;
using static HmmEmu.Gpu.GpuRegisters;

namespace HmmEmu.Gpu.Driver;

/// <summary>
/// One bound GPU (the driver's per-function state): BAR0, the command ring, the fault buffer, the fence page, the
/// interrupt handlers, the fault work queue and the contexts. User code opens a <see cref="GpuContext"/> per process
/// with <see cref="Open"/> and launches kernels on it.
/// </summary>
/// <remarks>
/// <para>Locks, in the order they nest: a context's table lock → its page-table lock → <c>_tlbiLock</c>;
/// <c>_submitLock</c> (command ring producer) and <c>_contextsLock</c> (context ids) are leaves. The fault handler runs
/// on its own work queue, one batch at a time. Interrupt handlers take no lock: they acknowledge INT_STATUS, wake the
/// event queue and queue work.</para>
/// <para>Reset: a stopped command ring (or <see cref="Reset"/>) disables and re-enables the device. Every context with
/// unfinished work then reports <see cref="GpuContextError.DeviceReset"/>; idle contexts are re-validated and keep
/// working.</para>
/// </remarks>
public sealed class GpuDevice
{
    /// <summary>Command-ring entries.</summary>
    public const int CommandEntries = 256;

    /// <summary>Fault-buffer records.</summary>
    public const int FaultEntries = 512;

    private const ulong PollNs = 500;

    private static readonly TraceSpanType s_faultBatchSpan = new("gpu", "fault_batch", crossThread: false, "records");

    private readonly HostKernel _kernel;
    private readonly PciDev _dev;
    private readonly PciBar _bar;
    private readonly KMutex _submitLock;
    private readonly KMutex _tlbiLock;
    private readonly KSpinLock _contextsLock;
    private readonly WaitQueue _events;
    private readonly WorkQueue _faultQueue;
    private readonly WorkItem _faultWork;
    private readonly WorkItem _recoverWork;
    private readonly GpuContext?[] _contexts = new GpuContext?[Contexts];   // only under _contextsLock
    private readonly GpuFaultBatcher _batcher;
    private GpuVram? _vram;
    private DmaCoherentBuffer _commands = null!;
    private DmaCoherentBuffer _faults = null!;
    private DmaCoherentBuffer _fences = null!;
    private uint _commandTail;     // only under _submitLock
    private uint _faultGet;        // only on the fault work queue
    private int _resetGeneration;
    private int _removed;
    private int _quiesced;
    private int _resetting;      // under _submitLock
    private long _deviceErrors;

    internal GpuDevice(HostKernel kernel, PciDev dev, GpuDriverOptions options)
    {
        _kernel = kernel;
        _dev = dev;
        _bar = dev.Bar(0) ?? throw new InvalidOperationException("The GPU has no BAR0.");
        Options = options;
        _submitLock = new KMutex(kernel, "gpu.submit");
        _tlbiLock = new KMutex(kernel, "gpu.tlbi");
        _contextsLock = new KSpinLock(kernel, "gpu.contexts");
        _events = new WaitQueue(kernel, "gpu events");
        _faultQueue = new WorkQueue(kernel, "gpu-fault");
        _faultWork = new WorkItem("gpu fault batch", HandleFaults);
        _recoverWork = new WorkItem("gpu recovery", Recover);
        _batcher = new GpuFaultBatcher(this);
        CopyEngine = new GpuCopyEngine(this);
        Migrator = new GpuMigrator(this);
    }

    /// <summary>The kernel the device is attached to.</summary>
    public HostKernel Kernel => _kernel;

    /// <summary>The driver's tunables.</summary>
    public GpuDriverOptions Options { get; }

    /// <summary>Bytes of VRAM the device reports.</summary>
    public ulong VramBytes { get; private set; }

    /// <summary>Device-level errors seen (command-ring stops, refused registers, copy-engine errors).</summary>
    public long DeviceErrors => Interlocked.Read(ref _deviceErrors);

    /// <summary>Resets performed (each one fails the contexts that had unfinished work).</summary>
    public int Resets => Volatile.Read(ref _resetGeneration);

    /// <summary>Whether the driver is being (or has been) unbound from the device.</summary>
    public bool IsRemoved => Volatile.Read(ref _removed) != 0;

    /// <summary>Whether the device has been stopped for removal: no engine runs and every TLB is flushed.</summary>
    internal bool IsQuiesced => Volatile.Read(ref _quiesced) != 0;

    /// <summary>Pages of VRAM (0 before probe).</summary>
    public int VramPages => _vram?.Pages ?? 0;

    /// <summary>The VRAM as the kernel knows it (its device-private pfns), or null before probe and after removal; for coherence checkers.</summary>
    public DevicePagemap? VramPagemap => _vram?.Pagemap;

    /// <summary>Free VRAM pages now.</summary>
    public int FreeVramPages => _vram?.FreePages ?? 0;

    /// <summary>Pages migrated to VRAM so far (prefetch and migrate-on-fault).</summary>
    public long PagesToVram => Migrator.ToVramPages;

    /// <summary>Pages migrated back to system memory so far (prefetch, eviction, CPU touches).</summary>
    public long PagesToSystem => Migrator.ToSystemPages;

    /// <summary>Pages evicted from VRAM to make room.</summary>
    public long PagesEvicted => Migrator.EvictedPages;

    /// <summary>Pages brought back because the CPU touched them.</summary>
    public long PagesFaultedBackByCpu => Migrator.CpuFaultPages;

    internal PciDev Pci => _dev;

    internal GpuVram Vram => _vram ?? throw new InvalidOperationException("The GPU's VRAM is registered at probe.");

    internal GpuCopyEngine CopyEngine { get; }

    internal GpuMigrator Migrator { get; }

    internal PciBar Bar => _bar;

    /// <summary>
    /// Opens a GPU context for <paramref name="process"/>: a device address space that mirrors the process's whole
    /// address space. Returns EBUSY when every context id is taken, ENODEV after removal, ENOMEM without memory for
    /// the page table. May sleep.
    /// </summary>
    public Errno TryOpen(Process process, out GpuContext? context)
    {
        ArgumentNullException.ThrowIfNull(process);
        _kernel.MightSleep("GpuDevice.Open");
        context = null;
        if (IsRemoved)
            return Errno.ENODEV;
        ushort id = 0;
        using (_contextsLock.Scoped())
        {
            for (int i = 1; i < Contexts; i++)   // id 0 is the copy engine's physical mode
            {
                if (_contexts[i] is null)
                {
                    id = (ushort)i;
                    break;
                }
            }
            if (id == 0)
                return Errno.EBUSY;
            _contexts[id] = GpuContext.Reserved;
        }
        int generation = ResetGeneration;
        var err = GpuContext.Create(this, process, id, out context);
        bool removed;
        using (_contextsLock.Scoped())
        {
            removed = IsRemoved;
            _contexts[id] = err == Errno.Ok ? context : null;
        }
        if (err != Errno.Ok)
            return err;
        if (removed)
        {
            // Removal began while we set up, and may have missed this context: close it ourselves.
            context!.Close();
            context = null;
            return Errno.ENODEV;
        }
        // A reset during the setup invalidated the context behind recovery's back (it was not listed yet).
        if (ResetGeneration != generation)
            context!.AfterReset(ResetGeneration);
        return Errno.Ok;
    }

    /// <summary>As <see cref="TryOpen"/>, throwing <see cref="InvalidOperationException"/> with the errno on failure.</summary>
    public GpuContext Open(Process process)
    {
        var err = TryOpen(process, out var context);
        if (err != Errno.Ok)
            throw new InvalidOperationException($"GpuDevice.Open failed with {err}: {Describe(err)}");
        return context!;
    }

    /// <summary>Resets the device (as after a hang): contexts with unfinished work report DeviceReset. May sleep.</summary>
    public void Reset()
    {
        _kernel.MightSleep("GpuDevice.Reset");
        _faultQueue.Queue(_recoverWork);
        _faultQueue.Flush();
    }

    /// <summary>The live context with id <paramref name="id"/>, or null.</summary>
    internal GpuContext? ContextOf(int id)
    {
        if ((uint)id >= Contexts)
            return null;
        using (_contextsLock.Scoped())
            return ReferenceEquals(_contexts[id], GpuContext.Reserved) ? null : _contexts[id];
    }

    /// <summary>
    /// Frees context id <paramref name="id"/> (the context has been torn down): first drains the fault buffer, so that
    /// no record of the old context can be taken for the next one with this id. May sleep.
    /// </summary>
    internal void ReleaseContextId(ushort id)
    {
        if (!IsRemoved)
        {
            _faultQueue.Queue(_faultWork);
            _faultQueue.Flush();
        }
        using (_contextsLock.Scoped())
            _contexts[id] = null;
    }

    // ---- probe / remove ---------------------------------------------------------------------------------------------

    /// <summary>Brings the device up: checks its identity, allocates the rings, requests interrupts, enables it. May sleep.</summary>
    internal Errno Probe()
    {
        uint id = _bar.Read32(Id);
        if (id >> 16 != IdMagic)
        {
            _kernel.Warn($"gpu: BAR0 ID reads 0x{id:x8}, not a HmmEmu GPU (0x{IdMagic:x4}xxxx).");
            return Errno.ENODEV;
        }
        VramBytes = _bar.Read64(VramSize);
        var err = _dev.AllocCoherent((ulong)(CommandEntries * GpuCommand.Size), out var commands, Gfp.Kernel | Gfp.Zero);
        if (err != Errno.Ok)
            return err;
        _commands = commands!;
        err = _dev.AllocCoherent((ulong)(FaultEntries * GpuFaultRecord.Size), out var faults, Gfp.Kernel | Gfp.Zero);
        if (err != Errno.Ok)
            return err;
        _faults = faults!;
        err = _dev.AllocCoherent((ulong)(Contexts * 8), out var fences, Gfp.Kernel | Gfp.Zero);
        if (err != Errno.Ok)
            return err;
        _fences = fences!;
        if ((err = CopyEngine.Allocate(_dev)) != Errno.Ok)
            return err;
        if (VramBytes >= PhysicalMemory.PageSize)
            _vram = new GpuVram(this, (int)Math.Min(VramBytes >> PhysicalMemory.PageShift, int.MaxValue));
        if ((err = _dev.RequestIrq(VectorEvents, OnEvents, "gpu-events")) != Errno.Ok)
            return err;
        if ((err = _dev.RequestIrq(VectorFault, OnFault, "gpu-fault")) != Errno.Ok)
            return err;
        if ((err = _dev.RequestIrq(VectorError, OnError, "gpu-error")) != Errno.Ok)
            return err;
        if ((err = _dev.RequestIrq(VectorCopy, OnCopy, "gpu-copy")) != Errno.Ok)
            return err;
        _bar.Write32(IntMask, 0);
        foreach (int vector in (ReadOnlySpan<int>)[VectorEvents, VectorFault, VectorCopy, VectorError])
            _bar.Write32(MsixVectorControl(vector), 0);      // vectors come out of reset masked
        return Enable();
    }

    /// <summary>Unbinds: fails every context, disables the device, stops the fault queue. May sleep.</summary>
    internal void Remove()
    {
        if (Interlocked.Exchange(ref _removed, 1) != 0)
            return;
        _events.WakeUpAll();
        // While the device still runs: bring every page back from VRAM (the CPU could not reach it once the
        // driver is gone), with copies and TLB invalidations that still work.
        if (_vram is not null)
        {
            using (Migrator.Lock())
                Migrator.EvictAllLocked();
        }
        // Then stop the device: engines stop, queued work is discarded, every TLB is flushed. Only after that may the
        // contexts free their page tables and DMA mappings (a running kernel could still be using them).
        _faultQueue.Flush();
        _bar.Write32(Control, 0);
        WaitQuiet();
        Volatile.Write(ref _quiesced, 1);
        _events.WakeUpAll();
        for (int i = 1; i < Contexts; i++)
            ContextOf(i)?.Close();
        _faultQueue.Flush();
        _faultQueue.Dispose();
    }

    // Programs the rings (latched on enable) and sets ENABLE. The driver's indices restart at 0 with the device's.
    private Errno Enable()
    {
        using (_submitLock.Scoped())
        {
            _commandTail = 0;
            _bar.Write64(CmdBase, _commands.BusAddress);
            _bar.Write32(CmdSize, CommandEntries);
        }
        // FAULT_GET is not written here: the buffer's indices restart at 0 when ENABLE latches it (a write while
        // disabled would be refused as a bad register).
        _faultGet = 0;
        _bar.Write64(FaultBase, _faults.BusAddress);
        _bar.Write32(FaultSize, FaultEntries);
        CopyEngine.Program(_bar);
        _bar.Write32(Status, StatusErrors);       // start from a clean slate: the check below is for this enable
        _bar.Write32(Control, ControlEnable);
        uint status = _bar.Read32(Status);
        if ((status & StatusEnabled) == 0 || (status & (StatusBadRegister | StatusCommandError | StatusCopyError)) != 0)
        {
            _kernel.Warn($"gpu: the device did not take the ring configuration (STATUS 0x{status:x}, ERROR_CODE " +
                $"{(GpuDeviceError)_bar.Read32(ErrorCode)}, ERROR_INFO 0x{_bar.Read64(ErrorInfo):x}).");
            return Errno.EIO;
        }
        return Errno.Ok;
    }

    private void WaitQuiet()
    {
        for (int i = 0; (_bar.Read32(Status) & StatusResetPending) != 0; i++)
        {
            if (i > 1_000_000)
                throw new InvalidOperationException("gpu: the device never finished its reset.");
            _kernel.Scheduler.Sleep(PollNs);
        }
    }

    // ---- command submission ----------------------------------------------------------------------------------------

    /// <summary>
    /// Writes <paramref name="command"/> into the command ring and rings the doorbell, waiting for space. Returns EIO
    /// if the ring is stopped (recovery is queued), ENODEV after removal. May sleep.
    /// </summary>
    internal Errno Submit(in GpuCommand command)
    {
        _kernel.MightSleep("GpuDevice.Submit");
        using (_submitLock.Scoped())
        {
            const uint wrap = 2 * CommandEntries;
            while (true)
            {
                if (IsRemoved)
                    return Errno.ENODEV;
                if (Volatile.Read(ref _resetting) != 0)
                    return Errno.EIO;           // recovery has the device disabled: a command now would be lost
                if ((_bar.Read64(CmdStatus) & 0x3) > 1)
                {
                    _faultQueue.Queue(_recoverWork);
                    return Errno.EIO;
                }
                uint head = _bar.Read32(CmdHead);
                if (((_commandTail - head) & (wrap - 1)) < CommandEntries)
                    break;
                _kernel.Scheduler.Sleep(PollNs);
            }
            command.Write(_commands.Span.Slice((int)(_commandTail & (CommandEntries - 1)) * GpuCommand.Size, GpuCommand.Size));
            _commandTail = (_commandTail + 1) & (wrap - 1);
            _bar.Write32(CmdTail, _commandTail);
            return Errno.Ok;
        }
    }

    /// <summary>The bus address of context <paramref name="id"/>'s fence slot.</summary>
    internal ulong FenceAddress(ushort id) => _fences.BusAddress + (8UL * id);

    /// <summary>
    /// The last fence value the device wrote for context <paramref name="id"/>; after removal (the fence page goes back
    /// to the bus) every fence counts as reached, and waiters look at the context's error.
    /// </summary>
    internal ulong FenceValue(ushort id) =>
        IsRemoved ? ulong.MaxValue : Volatile.Read(ref Unsafe.As<byte, ulong>(ref _fences.Span[8 * id]));

    /// <summary>Sleeps until <paramref name="done"/> holds; woken by the device's event interrupt. May sleep.</summary>
    internal void WaitEvent<TState>(TState state, Func<TState, bool> done) => _events.WaitEvent(state, done);

    /// <summary>Wakes every waiter on the device's events (after a state change made by the driver itself).</summary>
    internal void WakeEvents() => _events.WakeUpAll();

    /// <summary>The reset generation (changes when a reset completes).</summary>
    internal int ResetGeneration => Volatile.Read(ref _resetGeneration);

    /// <summary>
    /// Reset recovery is under way: the engines were stopped and their work discarded, so nothing a waiter waits for
    /// will complete until the new generation is published. A copy waiting on its descriptors gives up (EIO) and lets
    /// recovery reprogram the copy engine.
    /// </summary>
    internal bool IsResetting => Volatile.Read(ref _resetting) != 0;

    // ---- TLB invalidation ------------------------------------------------------------------------------------------

    /// <summary>
    /// Invalidates [<paramref name="start"/>, <paramref name="end"/>) of context <paramref name="id"/> in every engine's
    /// TLB and waits until the device reports it complete, which it does only after in-flight accesses that used a
    /// removed translation have ended. May sleep.
    /// </summary>
    [HmmEmu.Annotations.TlbFlush]
    internal void InvalidateTlb(ushort id, ulong start, ulong end)
    {
        _kernel.MightSleep("GpuDevice.InvalidateTlb");
        if (IsQuiesced)
            return;                             // stopped for removal: every TLB is flushed and nothing runs
        uint ticket;
        int generation = ResetGeneration;
        using (_tlbiLock.Scoped())
        {
            end = Math.Min(end, 1UL << 48);
            _bar.Write32(TlbiContext, id);
            _bar.Write64(TlbiAddress, start);
            _bar.Write64(TlbiSize, end - start);
            _bar.Write32(TlbiTrigger, end > start ? TlbiRange : TlbiContextAll);
            if ((_bar.Read32(TlbiStatus) & TlbiStatusError) != 0)
                _bar.Write32(TlbiTrigger, TlbiContextAll);   // never leave stale entries behind
            ticket = _bar.Read32(TlbiIssued);
        }
        // A reset flushes every TLB and ends every access, and restarts the counters: it completes the ticket too.
        WaitEvent((Device: this, Ticket: ticket, Generation: generation),
            static s => (int)(s.Device._bar.Read32(TlbiCompleted) - s.Ticket) >= 0 || s.Device.ResetGeneration != s.Generation || s.Device.IsQuiesced);
    }

    // ---- interrupts (interrupt context: must not sleep) ------------------------------------------------------------

    private IrqReturn OnEvents(int vector)
    {
        uint cause = _bar.Read32(IntStatus) & (IntFence | IntContextError | IntTlbDone | IntResetDone);
        if (cause == 0)
            return IrqReturn.None;
        _bar.Write32(IntStatus, cause);
        _events.WakeUpAll();
        return IrqReturn.Handled;
    }

    private IrqReturn OnCopy(int vector)
    {
        if ((_bar.Read32(IntStatus) & IntCopyDone) == 0)
            return IrqReturn.None;
        _bar.Write32(IntStatus, IntCopyDone);
        _events.WakeUpAll();
        return IrqReturn.Handled;
    }

    private IrqReturn OnFault(int vector)
    {
        if ((_bar.Read32(IntStatus) & IntFault) == 0)
            return IrqReturn.None;
        // Acknowledge before the work reads FAULT_PUT: a record written after that read raises the vector again.
        _bar.Write32(IntStatus, IntFault);
        if (!IsRemoved)
            _faultQueue.Queue(_faultWork);
        return IrqReturn.Handled;
    }

    private IrqReturn OnError(int vector)
    {
        if ((_bar.Read32(IntStatus) & IntError) == 0)
            return IrqReturn.None;
        _bar.Write32(IntStatus, IntError);
        uint status = _bar.Read32(Status);
        _bar.Write32(Status, status & StatusErrors);
        Interlocked.Increment(ref _deviceErrors);
        // COMMAND_ERROR also reports a fence the device could not write; only a stopped ring needs a reset.
        if ((status & StatusCommandError) != 0 && (_bar.Read64(CmdStatus) & 0x3) > 1 && !IsRemoved)
            _faultQueue.Queue(_recoverWork);
        _events.WakeUpAll();
        return IrqReturn.Handled;
    }

    // ---- fault handling (on the fault work queue) ------------------------------------------------------------------

    // Drains the fault buffer in batches until it is empty; each batch is resolved, then replayed once.
    private void HandleFaults()
    {
        const uint wrap = 2 * FaultEntries;
        var batch = new List<GpuFaultRecord>();
        while (!IsRemoved)
        {
            uint put = _bar.Read32(FaultPut);
            if (put == _faultGet || put >= wrap)
                return;
            batch.Clear();
            var buffer = _faults.Span;
            for (uint i = _faultGet; i != put; i = (i + 1) & (wrap - 1))
                batch.Add(GpuFaultRecord.Read(buffer.Slice((int)(i & (FaultEntries - 1)) * GpuFaultRecord.Size, GpuFaultRecord.Size)));
            _faultGet = put;
            _bar.Write32(FaultGet, put);
            var span = _kernel.Trace.Begin(s_faultBatchSpan, (ulong)batch.Count);
            _batcher.Resolve(batch);
            span.End();
        }
    }

    /// <summary>Writes FAULT_CANCEL for context <paramref name="id"/>: its stalled work fails and the context stops.</summary>
    internal void CancelFaults(ushort id) => _bar.Write32(FaultCancel, id);

    /// <summary>Writes FAULT_REPLAY: every stalled engine retries.</summary>
    internal void ReplayFaults() => _bar.Write32(FaultReplay, 1);

    // ---- recovery (on the fault work queue) ------------------------------------------------------------------------

    private void Recover()
    {
        if (IsRemoved)
            return;
        using (_submitLock.Scoped())
            Volatile.Write(ref _resetting, 1);
        _bar.Write32(Control, 0);
        WaitQuiet();
        _events.WakeUpAll();    // a copy waiting for descriptors the reset discarded gives up and releases the copy engine
        var live = new List<GpuContext>();
        using (_contextsLock.Scoped())
        {
            foreach (var c in _contexts)
            {
                if (c is not null && !ReferenceEquals(c, GpuContext.Reserved))
                    live.Add(c);
            }
        }
        var err = Enable();
        // Mark the work the reset lost before publishing the new generation, so that a waiter woken by it finds the
        // DeviceReset error rather than a success.
        int generation = ResetGeneration + 1;
        if (err == Errno.Ok)
        {
            foreach (var c in live)
                c.AfterReset(generation);
        }
        Volatile.Write(ref _resetGeneration, generation);
        using (_submitLock.Scoped())
            Volatile.Write(ref _resetting, 0);
        _events.WakeUpAll();
    }

    private static string Describe(Errno err) => err switch
    {
        Errno.EBUSY => "every GPU context id (1..15) is in use; close a context first.",
        Errno.ENODEV => "the GPU driver has been removed from this device.",
        Errno.ENOMEM => "no memory for the context's page table.",
        _ => "see the errno.",
    };

    /// <inheritdoc />
    public override string ToString() => $"gpu ({_dev})";
}
