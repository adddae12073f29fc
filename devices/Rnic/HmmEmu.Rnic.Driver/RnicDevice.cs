using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Locking;
using static HmmEmu.Rnic.RnicRegisters;

namespace HmmEmu.Rnic.Driver;

/// <summary>
/// One bound NIC: its command queue (one command at a time, under a mutex, each waited for through COMMAND_DONE), its
/// event queue (drained by a work item on every ASYNC_EVENT, PAGE_FAULT or COMPLETION interrupt), the ODP page-fault
/// handler (a work queue that resolves faults through HMM and RESUMEs the QP), and the registries that route events
/// to user contexts. User processes reach it through <see cref="Ibv.OpenDevice"/>.
/// </summary>
/// <remarks>
/// Lock order: an MR's mutex, then the command mutex. Nothing allocates memory while holding the command mutex,
/// because the ODP invalidate callback (which may run from reclaim) takes it.
/// </remarks>
public sealed class RnicDevice
{
    private readonly HostKernel _kernel;
    private readonly PciDev _dev;
    private readonly KMutex _cmdLock;
    private readonly WaitQueue _cmdWait;
    private readonly WorkQueue _eventQueue;
    private readonly WorkQueue _faultQueue;
    private readonly WorkItem _eventWork;
    private readonly WorkItem _faultWork;
    private readonly Lock _registry = new();
    private readonly Dictionary<uint, IbvQp> _qps = [];
    private readonly Dictionary<uint, IbvCq> _cqs = [];
    private readonly Dictionary<uint, IbvMr> _mrs = [];
    private readonly IbvContext?[] _contexts = new IbvContext?[RnicDoorbells.Contexts];
    private readonly Queue<RnicEqe> _faults = new();
    private PciBar _bar0 = null!;
    private PciBar _bar2 = null!;
    private DmaCoherentBuffer _commands = null!;
    private DmaCoherentBuffer _responses = null!;
    private DmaCoherentBuffer _events = null!;
    private DmaCoherentBuffer _scratch = null!;
    private uint _cmdProducer;
    private uint _token;
    private uint _eqConsumer;
    private int _removed;
    private long _faultsHandled;
    private long _faultErrors;
    private long _deviceErrors;

    internal RnicDevice(HostKernel kernel, PciDev dev, RnicDriverOptions options)
    {
        _kernel = kernel;
        _dev = dev;
        Options = options;
        _cmdLock = new KMutex(kernel, "rnic cmdq");
        _cmdWait = new WaitQueue(kernel, "rnic cmdq");
        _eventQueue = new WorkQueue(kernel, "rnic-events");
        _faultQueue = new WorkQueue(kernel, "rnic-fault");
        _eventWork = new WorkItem("rnic eq drain", DrainEvents);
        _faultWork = new WorkItem("rnic odp fault", HandleFaults);
    }

    /// <summary>The driver's tunables.</summary>
    public RnicDriverOptions Options { get; }

    /// <summary>This port's address on the link (a peer's QPs put it in their AV).</summary>
    public uint PortAddress { get; private set; }

    /// <summary>The PCI function.</summary>
    public PciDev Pci => _dev;

    /// <summary>Whether the device was removed (unbound).</summary>
    public bool IsRemoved => Volatile.Read(ref _removed) != 0;

    /// <summary>ODP faults resolved (RESUMEd without error) so far.</summary>
    public long FaultsHandled => Interlocked.Read(ref _faultsHandled);

    /// <summary>ODP faults that could not be resolved (RESUMEd with ERROR) so far.</summary>
    public long FaultErrors => Interlocked.Read(ref _faultErrors);

    /// <summary>Device-level error interrupts so far.</summary>
    public long DeviceErrors => Interlocked.Read(ref _deviceErrors);

    internal HostKernel Kernel => _kernel;

    internal PciBar Bar2 => _bar2;

    internal Errno Probe()
    {
        _bar0 = _dev.Bar(0) ?? throw new InvalidOperationException("The RNIC has no BAR0.");
        _bar2 = _dev.Bar(2) ?? throw new InvalidOperationException("The RNIC has no BAR2.");
        if (_bar0.Read32(Id) >> 16 != IdMagic)
            return Errno.ENODEV;
        PortAddress = _bar0.Read32(RnicRegisters.PortAddress);
        Errno err;
        if ((err = Alloc(Options.CommandEntries * RnicCommand.Size, out _commands)) != Errno.Ok ||
            (err = Alloc(Options.CommandEntries * RnicCommandCompletion.Size, out _responses)) != Errno.Ok ||
            (err = Alloc(Options.EventEntries * RnicEqe.Size, out _events)) != Errno.Ok ||
            (err = Alloc(4096, out _scratch)) != Errno.Ok)
        {
            return err;
        }
        if ((err = _dev.RequestIrq(VectorCommand, OnCommand, "rnic-cmd")) != Errno.Ok ||
            (err = _dev.RequestIrq(VectorAsync, OnEvents, "rnic-async")) != Errno.Ok ||
            (err = _dev.RequestIrq(VectorCompletion, OnEvents, "rnic-comp")) != Errno.Ok ||
            (err = _dev.RequestIrq(VectorError, OnError, "rnic-error")) != Errno.Ok)
        {
            return err;
        }
        for (int v = 0; v < Vectors; v++)
            _bar0.Write32(MsixVectorControl(v), 0);
        _bar0.Write64(CmdqBase, _commands.BusAddress);
        _bar0.Write64(CmdqRespBase, _responses.BusAddress);
        _bar0.Write32(CmdqSize, Options.CommandEntries);
        _bar0.Write64(EqBase, _events.BusAddress);
        _bar0.Write32(EqSize, Options.EventEntries);
        _bar0.Write32(Control, ControlEnable);
        // A queue configuration the device refused shows as an error bit while ENABLED still reads 1.
        uint status = _bar0.Read32(RnicRegisters.Status);
        return (status & StatusEnabled) != 0 && (status & (StatusCommandError | StatusBadRegister)) == 0 ? Errno.Ok : Errno.EIO;
    }

    /// <summary>Unbind: every user context is closed (its objects destroyed in the safe order), then the device stops.</summary>
    internal void Remove()
    {
        IbvContext?[] contexts;
        lock (_registry)
            contexts = [.. _contexts];
        foreach (var context in contexts)
            context?.Close();
        Volatile.Write(ref _removed, 1);
        _bar0.Write32(Control, 0);
        _eventQueue.Flush();
        _faultQueue.Flush();
        for (int v = 0; v < Vectors; v++)
            _dev.FreeIrq(v);
        _eventQueue.Dispose();
        _faultQueue.Dispose();
    }

    internal Errno Alloc(ulong bytes, out DmaCoherentBuffer buffer)
    {
        var err = _dev.AllocCoherent(Math.Max(bytes, 4096), out var b);
        buffer = b!;
        if (err == Errno.Ok)
            b!.Span.Clear();
        return err;
    }

    internal void Free(DmaCoherentBuffer? buffer)
    {
        if (buffer is not null && !buffer.IsFreed)
            _dev.FreeCoherent(buffer);
    }

    // ---- contexts and registries -------------------------------------------------------------------------------------

    internal bool TryAddContext(IbvContext context, out uint index)
    {
        lock (_registry)
        {
            for (uint i = 0; i < _contexts.Length; i++)
            {
                if (_contexts[i] is null)
                {
                    _contexts[i] = context;
                    index = i;
                    return true;
                }
            }
        }
        index = 0;
        return false;
    }

    internal void RemoveContext(uint index)
    {
        lock (_registry)
            _contexts[index] = null;
    }

    internal void Register(IbvQp qp)
    {
        lock (_registry)
            _qps[qp.QpNum] = qp;
    }

    internal void Unregister(IbvQp qp)
    {
        lock (_registry)
            _qps.Remove(qp.QpNum);
    }

    internal void Register(IbvCq cq)
    {
        lock (_registry)
            _cqs[cq.Number] = cq;
    }

    internal void Unregister(IbvCq cq)
    {
        lock (_registry)
            _cqs.Remove(cq.Number);
    }

    internal void Register(IbvMr mr)
    {
        lock (_registry)
            _mrs[mr.Lkey] = mr;
    }

    internal void Unregister(IbvMr mr)
    {
        lock (_registry)
            _mrs.Remove(mr.Lkey);
    }

    private IbvQp? FindQp(uint qpn)
    {
        lock (_registry)
            return _qps.GetValueOrDefault(qpn);
    }

    private IbvMr? FindMr(uint key)
    {
        lock (_registry)
            return _mrs.GetValueOrDefault(key);
    }

    // ---- commands ------------------------------------------------------------------------------------------------------

    /// <summary>Runs one command and returns its completion. May sleep.</summary>
    internal RnicCommandCompletion Execute(RnicCommand command) => Execute(_ => command, default, default);

    /// <summary>
    /// INVALIDATE_MTT of entries [<paramref name="first"/>, +<paramref name="count"/>) of <paramref name="key"/>'s MR,
    /// waited for: when it returns, the device has dropped those translations and the DMA that used them has ended, so
    /// the pages may go. May sleep.
    /// </summary>
    [HmmEmu.Annotations.TlbFlush]
    internal RnicCommandCompletion InvalidateMttAndWait(RnicKey key, ulong first, ulong count) =>
        Execute(RnicCommand.InvalidateMtt(0, key, first, count));

    /// <summary>
    /// DEREG_MR of <paramref name="key"/>, waited for: when it returns, the key no longer resolves on the device and the
    /// DMA that translated through the MR has drained, so its notifier, pages, MTT and key may go. May sleep.
    /// </summary>
    [HmmEmu.Annotations.DeviceKeyRevoke]
    internal RnicCommandCompletion DeregMrAndWait(RnicKey key) => Execute(RnicCommand.DeregMr(0, key));

    /// <summary>
    /// Runs the command <paramref name="make"/> builds from the bus address of a 64-byte block that holds
    /// <paramref name="blockIn"/> (if any) and is copied into <paramref name="blockOut"/> afterwards (if any). May sleep.
    /// </summary>
    internal RnicCommandCompletion Execute(Func<ulong, RnicCommand> make, ReadOnlySpan<byte> blockIn, Span<byte> blockOut)
    {
        _kernel.MightSleep("rnic command");
        if (IsRemoved)
            return new RnicCommandCompletion(make(0).Opcode, RnicCommandStatus.BadState, 0, 0, 0, 0);
        _cmdLock.Lock();
        try
        {
            var scratch = _scratch.Span[..RnicQpAttributes.Size];
            scratch.Clear();
            blockIn.CopyTo(scratch);
            var command = make(_scratch.BusAddress) with { Token = ++_token, Flags = RnicCommandFlags.Interrupt };
            uint entries = Options.CommandEntries;
            uint slot = _cmdProducer & (entries - 1);
            command.Write(_commands.Span.Slice((int)(slot * RnicCommand.Size), RnicCommand.Size));
            uint target = (_cmdProducer + 1) & ((2 * entries) - 1);
            _cmdProducer = target;
            _bar0.Write32(CmdqTail, target);
            _cmdWait.WaitEvent((Device: this, Target: target),
                static s => s.Device.IsRemoved || s.Device._bar0.Read32(CmdqHead) == s.Target || s.Device.CommandQueueStopped);
            var done = RnicCommandCompletion.Read(_responses.Span.Slice((int)(slot * RnicCommandCompletion.Size), RnicCommandCompletion.Size));
            if (done.Token != command.Token)
                return new RnicCommandCompletion(command.Opcode, RnicCommandStatus.BadState, 0, command.Token, 0, 0);
            if (!blockOut.IsEmpty)
                scratch[..blockOut.Length].CopyTo(blockOut);
            return done;
        }
        finally
        {
            _cmdLock.Unlock();
        }
    }

    private bool CommandQueueStopped => (_bar0.Read64(CmdqStatus) & 3) == 2;

    /// <summary>The errno a driver returns for a command status (docs/rnic.md §4).</summary>
    internal static Errno ToErrno(RnicCommandStatus status) => status switch
    {
        RnicCommandStatus.Ok => Errno.Ok,
        RnicCommandStatus.NoResources => Errno.ENOMEM,
        RnicCommandStatus.Busy => Errno.EBUSY,
        RnicCommandStatus.MemoryError => Errno.EFAULT,
        _ => Errno.EINVAL,
    };

    // ---- interrupts (interrupt context: must not sleep) ----------------------------------------------------------

    private IrqReturn OnCommand(int vector)
    {
        uint cause = _bar0.Read32(IntStatus) & (IntCommandDone | IntResetDone);
        if (cause == 0)
            return IrqReturn.None;
        _bar0.Write32(IntStatus, cause);
        _cmdWait.WakeUpAll();
        return IrqReturn.Handled;
    }

    private IrqReturn OnEvents(int vector)
    {
        uint cause = _bar0.Read32(IntStatus) & (IntAsyncEvent | IntPageFault | IntCompletion);
        if (cause == 0)
            return IrqReturn.None;
        // Acknowledge before the work reads EQ_PUT: an event written after that read raises the vector again.
        _bar0.Write32(IntStatus, cause);
        if (!IsRemoved)
            _eventQueue.Queue(_eventWork);
        return IrqReturn.Handled;
    }

    private IrqReturn OnError(int vector)
    {
        if ((_bar0.Read32(IntStatus) & IntError) == 0)
            return IrqReturn.None;
        _bar0.Write32(IntStatus, IntError);
        uint status = _bar0.Read32(RnicRegisters.Status);
        _bar0.Write32(RnicRegisters.Status, status & StatusErrors);
        Interlocked.Increment(ref _deviceErrors);
        _cmdWait.WakeUpAll();
        return IrqReturn.Handled;
    }

    // ---- the event queue (work queue: process context) ---------------------------------------------------------------

    private void DrainEvents()
    {
        if (IsRemoved)
            return;
        uint entries = Options.EventEntries, mask = (2 * entries) - 1;
        uint put = _bar0.Read32(EqPut);
        bool faults = false;
        var batch = new List<RnicEqe>();
        while (_eqConsumer != put)
        {
            batch.Add(RnicEqe.Read(_events.Span.Slice((int)((_eqConsumer & (entries - 1)) * RnicEqe.Size), RnicEqe.Size)));
            _eqConsumer = (_eqConsumer + 1) & mask;
        }
        _bar0.Write32(EqGet, _eqConsumer);
        foreach (var e in batch)
        {
            switch (e.Type)
            {
                case RnicEventType.PageFault:
                    lock (_faults)
                        _faults.Enqueue(e);
                    faults = true;
                    break;
                case RnicEventType.Completion:
                    IbvCq? cq;
                    lock (_registry)
                        cq = _cqs.GetValueOrDefault(e.ObjectNumber);
                    cq?.OnCompletionEvent();
                    break;
                case RnicEventType.CqErr:
                    IbvCq? dead;
                    lock (_registry)
                        dead = _cqs.GetValueOrDefault(e.ObjectNumber);
                    dead?.Context.PostAsyncEvent(new IbvAsyncEvent(IbvEventType.CqErr, e.ObjectNumber, e.Status));
                    break;
                case RnicEventType.QpFatal or RnicEventType.QpReqErr or RnicEventType.QpAccessErr or RnicEventType.SqDrained:
                    var qp = FindQp(e.ObjectNumber);
                    qp?.Context.PostAsyncEvent(new IbvAsyncEvent(IbvEventTypes.Of(e.Type), e.ObjectNumber, e.Status));
                    break;
                default:
                    IbvContext?[] contexts;
                    lock (_registry)
                        contexts = [.. _contexts];
                    foreach (var c in contexts)
                        c?.PostAsyncEvent(new IbvAsyncEvent(IbvEventTypes.Of(e.Type), e.ObjectNumber, e.Status));
                    break;
            }
        }
        if (faults)
            _faultQueue.Queue(_faultWork);
    }

    // ---- ODP faults (work queue: process context) ----------------------------------------------------------------------

    private void HandleFaults()
    {
        while (true)
        {
            RnicEqe e;
            lock (_faults)
            {
                if (!_faults.TryDequeue(out e))
                    return;
            }
            var qp = FindQp(e.ObjectNumber);
            if (qp is null)
                continue;       // destroyed meanwhile: nothing to resume
            var mr = FindMr(e.Key);
            var err = mr is { IsOnDemand: true } && mr.Pd.Context == qp.Context
                ? mr.ResolveFault(e.Address, e.Length, write: e.Access != RnicFaultAccess.Read)
                : Errno.EFAULT;
            if (err == Errno.Ok)
                Interlocked.Increment(ref _faultsHandled);
            else
                Interlocked.Increment(ref _faultErrors);
            // NotPending is fine: the QP went to ERR or RESET while the fault was being served.
            Execute(RnicCommand.Resume(0, qp.QpNum, e.Side, error: err != Errno.Ok));
        }
    }
}
