using HmmEmu.Hardware.Interrupts;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Registers;
using HmmEmu.Hardware.Rings;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;
using static HmmEmu.Rnic.RnicRegisters;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// The HmmEmu RDMA NIC as hardware: BAR0 laid out as <see cref="RnicRegisters"/> says, a doorbell page per user context
/// in BAR2, four MSI-X vectors, a command processor for control verbs, an event queue, an MTT translation cache with
/// in-flight DMA tracking, and requester, responder and completer engines (channel workers) that run RC queue pairs
/// over an <see cref="RnicLink"/>.
/// </summary>
/// <remarks>
/// <para>Bad programming never throws into the host: a refused register write sets STATUS.BAD_REGISTER, a bad BAR access
/// STATUS.BUS_ERROR, a dropped doorbell STATUS.DOORBELL_ERROR; each sets ERROR_CODE/ERROR_INFO (bus errors excepted)
/// and raises INT_STATUS.ERROR. A bad command completes with an error status and the queue goes on; a bad WQE or a
/// protocol error fails only its QP.</para>
/// <para>Locks: the object tables are guarded by <see cref="_objects"/>; each QP, CQ and the EQ have their own (order:
/// object table, QP, CQ, EQ). No lock is held across a virtual-time charge, a sleep or a translation.</para>
/// </remarks>
public sealed partial class RnicModel : IPciDevice, IMmio, IRnicPort, IDisposable
{
    private static readonly TraceEventType s_deviceErrorEvent = new("rnic", "device_error", "code", "info");

    private readonly HostKernel _kernel;
    private readonly Lock _objects = new();
    private readonly RnicPd?[] _pds;
    private readonly RnicMr?[] _mrs;
    private readonly byte[] _keyBytes;
    private readonly RnicCq?[] _cqs;
    private readonly RnicQp?[] _qps;
    private readonly Register _control;
    private readonly Register _status;
    private readonly InterruptCauses _interrupts;
    private readonly LatchedRegister _cmdqBase;
    private readonly LatchedRegister _cmdqRespBase;
    private readonly LatchedRegister _cmdqSize;
    private readonly LatchedRegister _eqBase;
    private readonly LatchedRegister _eqSize;
    private readonly Register _errorCode;
    private readonly Register _errorInfo;
    private readonly RnicEventQueue _eq;
    private readonly RnicCommandProcessor _commands;
    private readonly RnicRequester _requester;
    private readonly RnicResponder _responder;
    private readonly RnicCompleter _completer;
    private readonly RnicRetryTimer _timer;
    private RnicLink? _link;

    // Zero-copy segments built and not yet released, at most MaxSegmentsInFlight (a quarter of the use slots).
    private const int MaxSegmentsInFlight = 64;
    private int _segmentsInFlight;
    private readonly System.Collections.Concurrent.ConcurrentQueue<RnicSegmentStorage> _segmentStorage = new();
    private int _enabled;
    private int _doorbellErrors;
    private int _receiveBacklog;
    private long _resetGeneration;

    /// <summary>Creates the NIC on <paramref name="kernel"/>'s RAM; its engines start at once and idle until rung.</summary>
    public RnicModel(HostKernel kernel, RnicModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        Options = options ?? RnicModelOptions.Default;
        Options.Validate();
        var scheduler = kernel.Scheduler;
        Memory = new SystemMemoryPort(kernel.Memory, watchFreeFrames: true);
        _pds = new RnicPd?[Options.MaxPd + 1];
        _mrs = new RnicMr?[Options.MaxMr + 1];
        _keyBytes = new byte[Options.MaxMr + 1];
        _cqs = new RnicCq?[Options.MaxCq + 1];
        _qps = new RnicQp?[Options.MaxQp + 2];
        Translation = new CachedPageTranslator(scheduler, $"rnic{Options.PortAddress}.mtt", new RnicMttSource(this),
            Options.CacheSets, Options.CacheWays, useSlots: 256);
        Msix = new MsixTable(Vectors, maskedAtReset: true, kernel.Trace);
        Bar0 = new RegisterFile($"rnic{Options.PortAddress}.bar0", Bar0Size, kernel.Trace, onBusError: ReportBusError);
        Bar2 = new RnicDoorbellBar(this);
        _eq = new RnicEventQueue(Memory);

        // ---- identity and capabilities
        Bar0.Define32(Id, "ID", "Identity: 0x524E (\"RN\") [31:16], major [15:8], minor [7:0].", reset: IdValue);
        Bar0.Define32(Caps, "CAPS", "ODP [0], ATOMIC [1], send SGEs per WQE [11:8], receive SGEs per WQE [15:12].",
            reset: CapsOdp | CapsAtomic | ((uint)RnicSendWqe.MaxSge << CapsSendSgesShift) | ((uint)RnicRecvWqe.MaxSge << CapsRecvSgesShift));
        Bar0.Define32(OdpCaps, "ODP_CAPS", "Operations that may use ODP MRs: SEND [0], RECV [1], WRITE [2], READ [3], ATOMIC [4].",
            reset: (uint)(RnicOdpCaps.Send | RnicOdpCaps.Recv | RnicOdpCaps.Write | RnicOdpCaps.Read | RnicOdpCaps.Atomic));
        Bar0.Define32(RnicRegisters.Contexts, "CONTEXTS", "User contexts (doorbell pages).", reset: RnicDoorbells.Contexts);
        Bar0.Define32(MaxPd, "MAX_PD", "PDs the device holds.", reset: Options.MaxPd);
        Bar0.Define32(MaxMr, "MAX_MR", "MRs the device holds (indices 1..MAX_MR).", reset: Options.MaxMr);
        Bar0.Define32(MaxCq, "MAX_CQ", "CQs the device holds.", reset: Options.MaxCq);
        Bar0.Define32(MaxQp, "MAX_QP", "QPs the device holds.", reset: Options.MaxQp);
        Bar0.Define32(MaxQpWr, "MAX_QP_WR", "Largest SQ or RQ in entries (a power of two).", reset: Options.MaxQpWr);
        Bar0.Define32(MaxCqe, "MAX_CQE", "Largest CQ in entries (a power of two).", reset: Options.MaxCqe);
        Bar0.Define32(MaxRdAtomic, "MAX_RD_ATOMIC", "Outstanding READ/atomic requests per QP: as initiator [7:0], as responder [15:8].",
            reset: Options.MaxRdAtomic | ((uint)Options.MaxRdAtomic << 8));
        Bar0.Define32(MaxMtt, "MAX_MTT", "Largest MTT of one MR, in entries.", reset: Options.MaxMtt);
        Bar0.Define32(RnicRegisters.PortState, "PORT_STATE", "State [3:0] (1 Down, 4 Active), active MTU [11:8].",
            onRead: _ => (ulong)PortStateValue | ((ulong)Options.ActiveMtu << PortStateMtuShift));
        Bar0.Define32(RnicRegisters.PortAddress, "PORT_ADDRESS", "This port's address on the link.", reset: Options.PortAddress);

        // ---- global control
        _control = Bar0.Define(new RegisterDefinition
        {
            Offset = Control,
            Name = "CONTROL",
            Description = "ENABLE latches the queue configuration (clearing it resets every engine and object); RESET resets them and keeps ENABLE.",
            Fields =
            [
                new RegisterField("RESET", 1, 1, FieldMode.WriteOnly),
                new RegisterField("ENABLE", 0, 1, FieldMode.ReadWrite),
            ],
            OnWrite = OnControlWrite,
        });
        _status = Bar0.Define(new RegisterDefinition
        {
            Offset = Status,
            Name = "STATUS",
            Description = "Device state and latched errors; clear an error by writing 1 to it.",
            Fields =
            [
                new RegisterField("EVENT_OVERFLOW", 12, 1, FieldMode.WriteOneToClear),
                new RegisterField("DOORBELL_ERROR", 11, 1, FieldMode.WriteOneToClear),
                new RegisterField("BUS_ERROR", 10, 1, FieldMode.WriteOneToClear),
                new RegisterField("COMMAND_ERROR", 9, 1, FieldMode.WriteOneToClear),
                new RegisterField("BAD_REGISTER", 8, 1, FieldMode.WriteOneToClear),
                new RegisterField("RESET_PENDING", 1, 1, FieldMode.ReadOnly),
                new RegisterField("ENABLED", 0, 1, FieldMode.ReadOnly),
            ],
            OnRead = stored => (stored & StatusErrors) | (IsEnabled ? StatusEnabled : 0) | (ResetPending ? StatusResetPending : 0),
        });
        _interrupts = new InterruptCauses(Bar0, Msix,
            [
                Cause("RESET_DONE", IntResetDone), Cause("ERROR", IntError), Cause("COMPLETION", IntCompletion),
                Cause("PAGE_FAULT", IntPageFault), Cause("ASYNC_EVENT", IntAsyncEvent), Cause("COMMAND_DONE", IntCommandDone),
            ],
            IntStatus, "Interrupt causes, latched even while masked, cleared by writing 1. COMMAND_DONE and RESET_DONE send vector 0, ASYNC_EVENT and PAGE_FAULT 1, COMPLETION 2, ERROR 3.",
            IntMask, "A set bit latches its cause without sending the vector; clearing it sends the vector of a cause still latched.");
        Bar0.Define32(BusErrors, "BUS_ERRORS", "Bad BAR0/BAR2 accesses so far (unknown offset, bad size or alignment).",
            onRead: _ => (ulong)(Bar0.BusErrors + Bar2.BusErrors));
        Bar0.Define32(DoorbellErrors, "DOORBELL_ERRORS", "Doorbells dropped so far.", onRead: _ => (uint)Volatile.Read(ref _doorbellErrors));
        _errorCode = Bar0.Define32(ErrorCode, "ERROR_CODE", "The last device-level error (RnicDeviceError).");
        _errorInfo = Bar0.Define64(ErrorInfo, "ERROR_INFO", "Detail of ERROR_CODE: a register offset, a queue index, an address or an event type.");

        // ---- command queue
        _cmdqBase = LatchedRegister.Define64(Bar0, CmdqBase, "CMDQ_BASE", "Command ring bus address (64-byte entries); latched when ENABLE is set.",
            () => IsEnabled, OnRefused);
        _cmdqRespBase = LatchedRegister.Define64(Bar0, CmdqRespBase, "CMDQ_RESP_BASE", "Completion array bus address (32-byte slots); latched when ENABLE is set.",
            () => IsEnabled, OnRefused);
        _cmdqSize = LatchedRegister.Define32(Bar0, CmdqSize, "CMDQ_SIZE", "Command ring entries (a power of two, 2..4096); latched when ENABLE is set.",
            () => IsEnabled, OnRefused);
        _commands = new RnicCommandProcessor(this, scheduler);
        Bar0.Define32(CmdqTail, "CMDQ_TAIL", "Command doorbell: write the new producer index; reads the device's view of it.",
            readWrite: ~0u, onWrite: (_, v) => OnCommandDoorbell((uint)v), onRead: _ => _commands.Ring.Producer);
        Bar0.Define32(CmdqHead, "CMDQ_HEAD", "Commands before it have finished and their completions are written.",
            onRead: _ => _commands.Ring.Consumer);
        Bar0.Define64(CmdqStatus, "CMDQ_STATUS", "State [1:0] (0 Disabled, 1 Running, 2 Stopped), error [15:8], error index [63:32].",
            onRead: _ => _commands.Ring.Status.Pack());

        // ---- event queue
        _eqBase = LatchedRegister.Define64(Bar0, EqBase, "EQ_BASE", "Event queue bus address (32-byte entries); latched when ENABLE is set.",
            () => IsEnabled, OnRefused);
        _eqSize = LatchedRegister.Define32(Bar0, EqSize, "EQ_SIZE", "Event-queue entries (a power of two, 2..4096); latched when ENABLE is set.",
            () => IsEnabled, OnRefused);
        Bar0.Define32(EqGet, "EQ_GET", "The driver's consumer index: entries before it have been read.",
            readWrite: ~0u, onWrite: (_, v) => OnEqGet((uint)v), onRead: _ => _eq.Get);
        Bar0.Define32(EqPut, "EQ_PUT", "The device's producer index: entries before it are written.", onRead: _ => _eq.Put);
        Bar0.Define32(EqOverflows, "EQ_OVERFLOWS", "Async events dropped because the queue was full.", onRead: _ => _eq.Overflows);

        Msix.MapRegisters(Bar0, MsixControl, MsixVectorTable, MsixPba);
        Bar0.AddResetHook(OnRegisterReset);

        _requester = new RnicRequester(this, scheduler);
        _responder = new RnicResponder(this, scheduler);
        _completer = new RnicCompleter(this, scheduler);
        _timer = new RnicRetryTimer(this, scheduler);
        Bars = [this, null, Bar2];
    }

    /// <summary>The options the model was built with.</summary>
    public RnicModelOptions Options { get; }

    /// <summary>BAR0's registers (also for <c>docs/</c>: <see cref="RegisterFile.ToMarkdown"/>).</summary>
    public RegisterFile Bar0 { get; }

    /// <summary>BAR2: one doorbell page per user context.</summary>
    public RnicDoorbellBar Bar2 { get; }

    /// <summary>The interrupt table.</summary>
    public MsixTable Msix { get; }

    /// <summary>System RAM as the device sees it (bus addresses).</summary>
    public SystemMemoryPort Memory { get; }

    /// <summary>The MTT translation cache (id = MR index, page = iova page) and its in-flight DMA uses.</summary>
    public CachedPageTranslator Translation { get; }

    /// <summary>Whether CONTROL.ENABLE is set.</summary>
    public bool IsEnabled => Volatile.Read(ref _enabled) != 0;

    /// <summary>Whether a reset was requested and the device is not quiet yet (STATUS.RESET_PENDING).</summary>
    public bool ResetPending => _commands.ResetPending;

    /// <summary>The port's state: Active once a link is attached and the device is enabled.</summary>
    public RnicPortState PortStateValue => _link is not null && IsEnabled ? RnicPortState.Active : RnicPortState.Down;

    /// <summary>Counters of the data path (packets, retransmissions, faults, NAKs).</summary>
    public RnicModelStats Stats => Counters.Snapshot();

    /// <inheritdoc />
    public ushort VendorId => RnicRegisters.VendorId;

    /// <inheritdoc />
    public ushort DeviceId => RnicRegisters.DeviceId;

    /// <inheritdoc />
    public uint ClassCode => RnicRegisters.ClassCode;

    /// <inheritdoc />
    public IReadOnlyList<IMmio?> Bars { get; }

    /// <inheritdoc />
    public int VectorCount => Msix.VectorCount;

    /// <inheritdoc />
    public uint Address => Options.PortAddress;

    /// <inheritdoc />
    public int ReceiveBacklog => Volatile.Read(ref _receiveBacklog);

    /// <inheritdoc />
    ulong IMmio.Size => Bar0.Size;

    internal HostKernel Kernel => _kernel;

    internal Scheduler Scheduler => _kernel.Scheduler;

    internal RnicLink? Link => Volatile.Read(ref _link);

    internal RnicCounters Counters { get; } = new();

    internal RnicRequester Requester => _requester;

    internal RnicCompleter Completer => _completer;

    internal RnicResponder Responder => _responder;

    internal RnicRetryTimer Timer => _timer;

    internal long ResetGeneration => Interlocked.Read(ref _resetGeneration);

    /// <summary>Plugs the NIC into <paramref name="link"/> (one of its two ports must be this NIC).</summary>
    public void Connect(RnicLink link)
    {
        ArgumentNullException.ThrowIfNull(link);
        if (Interlocked.CompareExchange(ref _link, link, null) is not null)
            throw new InvalidOperationException($"rnic{Address}: the port is already connected to a link; a NIC has one port.");
        link.OnQuiet(_timer.LinkQuiet);
    }

    /// <inheritdoc />
    public void Attach(IInterruptSink interrupts) => Msix.Connect(interrupts);

    /// <inheritdoc />
    ulong IMmio.Read(ulong offset, int size) => Bar0.Read(offset, size);

    /// <inheritdoc />
    void IMmio.Write(ulong offset, int size, ulong value) => Bar0.Write(offset, size, value);

    /// <inheritdoc />
    public void Receive(RnicPacket packet)
    {
        ArgumentNullException.ThrowIfNull(packet);
        Interlocked.Increment(ref _receiveBacklog);
        bool posted = IsResponse(packet.Header.Opcode) ? _completer.Post([packet]) : _responder.Post([packet]);
        if (!posted)
        {
            Interlocked.Decrement(ref _receiveBacklog);
            packet.Segment?.Release();      // stopped: dropped like any packet
        }
    }

    /// <inheritdoc />
    public void ReceiveBurst(IReadOnlyList<RnicPacket> packets) => ReceiveBurst(packets, inline: false);

    /// <summary>
    /// <see cref="ReceiveBurst(IReadOnlyList{RnicPacket})"/>; with <paramref name="inline"/> (the link's direct hand-over
    /// from a sender that holds no lock), an idle engine handles the packets on the calling thread instead of being
    /// woken for them.
    /// </summary>
    internal void ReceiveBurst(IReadOnlyList<RnicPacket> packets, bool inline)
    {
        ArgumentNullException.ThrowIfNull(packets);
        int responses = 0;
        foreach (var packet in packets)
        {
            if (IsResponse(packet.Header.Opcode))
                responses++;
        }
        var toCompleter = new RnicPacket[responses];
        var toResponder = new RnicPacket[packets.Count - responses];
        int c = 0, r = 0;
        foreach (var packet in packets)
        {
            if (IsResponse(packet.Header.Opcode))
                toCompleter[c++] = packet;
            else
                toResponder[r++] = packet;
        }
        Interlocked.Add(ref _receiveBacklog, packets.Count);
        if (toResponder.Length != 0 && !(inline && _responder.TryRunInline(toResponder)) && !_responder.Post(toResponder))
        {
            Interlocked.Add(ref _receiveBacklog, -toResponder.Length);
            foreach (var packet in toResponder)
                packet.Segment?.Release();      // stopped: dropped like any packet
        }
        if (toCompleter.Length != 0 && !(inline && _completer.TryRunInline(toCompleter)) && !_completer.Post(toCompleter))
            Interlocked.Add(ref _receiveBacklog, -toCompleter.Length);
    }

    /// <summary>
    /// Function-level reset: every engine stops, every object is destroyed, then every register returns to its reset
    /// value and the vectors are masked. May sleep (waits, in virtual time, for the device to be quiet).
    /// </summary>
    public void FunctionLevelReset()
    {
        Volatile.Write(ref _enabled, 0);
        StartReset();
        for (int i = 0; ResetPending; i++)
        {
            if (i > 1_000_000)
                throw new TimeoutException($"rnic{Address}: the device did not become quiet during a function-level reset.");
            _kernel.Scheduler.Sleep(100);
        }
        Bar0.Reset();
    }

    /// <summary>Stops every engine and waits for their workers.</summary>
    public void Dispose()
    {
        _timer.Dispose();
        _commands.Dispose();
        _requester.Dispose();
        _responder.Dispose();
        _completer.Dispose();
    }

    // ---- for the engines (any thread; never sleep) -----------------------------------------------------------------

    internal void PacketProcessed()
    {
        if (Interlocked.Decrement(ref _receiveBacklog) == 0)
            Link?.NotifyIfQuiet();
    }

    internal void Send(RnicPacket packet)
    {
        Counters.PacketsSent.Increment();
        Link?.Send(this, packet);
    }

    /// <summary>
    /// Sends <paramref name="packets"/> in order. <paramref name="holdsNoLock"/>: the caller holds no lock, so on the
    /// link's direct hand-over the far port's idle engines may handle them on this thread.
    /// </summary>
    internal void SendBurst(IReadOnlyList<RnicPacket> packets, bool holdsNoLock = false)
    {
        long count = 0;
        foreach (var packet in packets)
            count += packet.PacketCount;
        Counters.PacketsSent.Add(count);
        if (Link is { } link)
        {
            link.SendBurst(this, packets, holdsNoLock);
            return;
        }
        foreach (var packet in packets)
            packet.Segment?.Release();      // no cable: the packets are gone
    }

    /// <summary>
    /// Whether the requester may build a zero-copy segment now: the link carries them and fewer than
    /// <see cref="MaxSegmentsInFlight"/> are unreleased (each holds one of the translation cache's use slots, and the
    /// responder needs slots of its own to place them). Only the requester's thread builds segments, so the count
    /// cannot overshoot between this check and the segment's creation.
    /// </summary>
    internal bool MayBuildSegment() =>
        Volatile.Read(ref _segmentsInFlight) < MaxSegmentsInFlight && Link is { } link && link.CarriesSegments(this);

    /// <summary>Counts a segment from its creation (<see cref="RnicSegment"/>'s constructor) to its release.</summary>
    internal void SegmentCreated() => Interlocked.Increment(ref _segmentsInFlight);

    /// <summary>See <see cref="SegmentCreated"/>; <paramref name="storage"/> goes back for the next segment.</summary>
    internal void SegmentReleased(RnicSegmentStorage storage)
    {
        _segmentStorage.Enqueue(storage);
        Interlocked.Decrement(ref _segmentsInFlight);
    }

    /// <summary>Gives back storage rented for a segment that was not built.</summary>
    internal void SegmentStorageUnused(RnicSegmentStorage storage) => _segmentStorage.Enqueue(storage);

    /// <summary>Storage for a new segment: a recycled one, or a new one (at most MaxSegmentsInFlight ever live).</summary>
    internal RnicSegmentStorage RentSegmentStorage() =>
        _segmentStorage.TryDequeue(out var storage) ? storage : new RnicSegmentStorage();

    /// <summary>Segments created and not yet released.</summary>
    internal int SegmentsInFlight => Volatile.Read(ref _segmentsInFlight);

    /// <summary>
    /// The QPs with a page fault the driver has not answered yet (RESUME): number and side, in QP order. At quiescence a
    /// correct driver leaves none (every fault answered, INV-13). For debuggers and coherence checkers; never sleeps.
    /// </summary>
    public IReadOnlyList<(uint Qp, RnicFaultSide Side)> PendingFaults()
    {
        var pending = new List<(uint, RnicFaultSide)>();
        for (int i = 2; i < _qps.Length; i++)
        {
            if (Volatile.Read(ref _qps[i]) is not { } qp)
                continue;
            lock (qp.Sync)
            {
                if (qp.Destroyed)
                    continue;
                if (qp.RequesterFault)
                    pending.Add((qp.Number, RnicFaultSide.Requester));
                if (qp.ResponderFault)
                    pending.Add((qp.Number, RnicFaultSide.Responder));
            }
        }
        return pending;
    }

    internal RnicQp? FindQp(uint qpn) => qpn < (uint)_qps.Length ? Volatile.Read(ref _qps[qpn]) : null;

    internal RnicMr? FindMrByIndex(uint index) => index < (uint)_mrs.Length ? Volatile.Read(ref _mrs[index]) : null;

    /// <summary>The live MR that <paramref name="key"/> names, or null (index unused, stale key byte, deregistering).</summary>
    internal RnicMr? FindMr(uint key)
    {
        var k = new RnicKey(key);
        var mr = FindMrByIndex(k.Index);
        return mr is not null && mr.Key.Value == key && mr.IsLive ? mr : null;
    }

    /// <summary>
    /// The MTT entry that <paramref name="key"/>'s MR holds for the page of <paramref name="iova"/>, read from host memory
    /// as the device would on a cache miss but charging no time and counting nothing: for debuggers and coherence
    /// checkers. Null when the key names no live MR, the page lies outside it, or the MTT cannot be read. Never sleeps.
    /// </summary>
    public RnicMttEntry? InspectMtt(uint key, ulong iova)
    {
        var mr = FindMr(key);
        if (mr is null || iova < (mr.Iova & RnicMttEntry.AddressMask))
            return null;
        ulong index = RnicMttEntry.IndexOf(mr.Iova, iova);
        if (index >= mr.MttEntries || !Memory.TryReadUInt64(mr.MttAddress + (index * RnicMttEntry.Size), out ulong raw))
            return null;
        return new RnicMttEntry(raw);
    }

    /// <summary>The live QPs in number order (deterministic), for the timer.</summary>
    internal void CollectQps(List<RnicQp> into)
    {
        into.Clear();
        for (int i = 2; i < _qps.Length; i++)
        {
            if (Volatile.Read(ref _qps[i]) is { } qp)
                into.Add(qp);
        }
    }

    /// <summary>Writes an event (or defers/drops it as the EQ rules say) and raises its cause. Never sleeps.</summary>
    internal void RaiseEvent(RnicEqe entry)
    {
        switch (_eq.Post(entry, out ulong failed))
        {
            case EventOutcome.Written:
                _interrupts.Raise(CauseOf(entry.Type));
                break;
            case EventOutcome.Dropped:
                if (IsEnabled)
                    DeviceError(RnicDeviceError.EventOverflow, StatusEventOverflow, (ulong)entry.Type);
                break;
            case EventOutcome.Failed:
                DeviceError(RnicDeviceError.WriteBack, StatusBadRegister, failed);
                break;
        }
    }

    internal void RaiseQpEvent(RnicEventType type, RnicQp qp, RnicWcStatus status = RnicWcStatus.Success, uint wqeIndex = 0) =>
        RaiseEvent(new RnicEqe(type, RnicFaultSide.None, RnicFaultAccess.None, status, qp.Number, 0, 0, 0, wqeIndex, 0));

    internal void CommandDone() => _interrupts.Raise(IntCommandDone);

    /// <summary>Reports a device-level error: ERROR_CODE/INFO, a STATUS error bit, INT_STATUS.ERROR. Never sleeps.</summary>
    internal void DeviceError(RnicDeviceError code, uint statusBit, ulong info)
    {
        _errorCode.Set((ulong)code);
        _errorInfo.Set(info);
        _kernel.Trace.Record(s_deviceErrorEvent, (ulong)code, info);
        _status.SetBits(statusBit);
        _interrupts.Raise(IntError);
    }

    // ---- object tables (the command processor; under _objects) -------------------------------------------------------

    internal Lock Objects => _objects;

    internal RnicPd?[] Pds => _pds;

    internal RnicMr?[] Mrs => _mrs;

    internal byte[] KeyBytes => _keyBytes;

    internal RnicCq?[] Cqs => _cqs;

    internal RnicQp?[] Qps => _qps;

    internal void ResetDone() => _interrupts.Raise(IntResetDone);

    // ---- register handlers (driver threads; never sleep) ----------------------------------------------------------

    private static InterruptCause Cause(string name, uint bit) => new(name, bit, VectorOf(bit));

    private static bool IsResponse(RnicPacketOpcode opcode) =>
        opcode is >= RnicPacketOpcode.RdmaReadResponseFirst and <= RnicPacketOpcode.AtomicAcknowledge;

    private static uint CauseOf(RnicEventType type) => type switch
    {
        RnicEventType.Completion => IntCompletion,
        RnicEventType.PageFault => IntPageFault,
        _ => IntAsyncEvent,
    };

    private void OnRefused(Register register, ulong value) => BadRegister(register.Offset);

    private void OnControlWrite(ulong written, ulong value)
    {
        bool enable = (value & ControlEnable) != 0;
        bool wasEnabled = Interlocked.Exchange(ref _enabled, enable ? 1 : 0) != 0;
        if ((written & ControlReset) != 0)
        {
            _control.ClearBits(ControlReset);
            if (wasEnabled == enable)
            {
                StartReset();
                // RESET keeps ENABLE: the queues start again at index 0 from the configuration latched before.
                if (enable)
                    ConfigureOnEnable();
            }
        }
        if (wasEnabled && !enable)
        {
            StartReset();
        }
        else if (!wasEnabled && enable)
        {
            ConfigureOnEnable();
        }
    }

    private void ConfigureOnEnable()
    {
        ulong cmdBase = _cmdqBase.Value, respBase = _cmdqRespBase.Value, cmdSize = _cmdqSize.Value;
        if (!IsQueueSize(cmdSize) || (respBase & (RnicCommandCompletion.Size - 1)) != 0 ||
            !Memory.TryGetSpan(respBase, RnicCommandCompletion.Size, write: true, out _) ||
            _commands.Configure(cmdBase, respBase, (uint)cmdSize) != RingError.None)
        {
            _commands.Ring.Disable();
            DeviceError(RnicDeviceError.BadCommandQueue, StatusCommandError, cmdSize);
        }
        ulong eqBase = _eqBase.Value, eqSize = _eqSize.Value;
        if (!IsQueueSize(eqSize) || !_eq.Configure(eqBase, (uint)eqSize))
        {
            _eq.Disable();
            DeviceError(RnicDeviceError.BadEventQueue, StatusBadRegister, eqSize);
        }
        else if (Link is not null)
        {
            RaiseEvent(new RnicEqe(RnicEventType.PortActive, RnicFaultSide.None, RnicFaultAccess.None,
                RnicWcStatus.Success, 1, 0, 0, 0, 0, 0));
        }
    }

    private static bool IsQueueSize(ulong size) =>
        size is >= MinQueueEntries and <= MaxQueueEntries && (size & (size - 1)) == 0;

    private void OnCommandDoorbell(uint producer)
    {
        if (!IsEnabled)
        {
            BadRegister(CmdqTail);
            return;
        }
        if (!_commands.Ring.Doorbell(producer))
        {
            var status = _commands.Ring.Status;
            if (status.State == RingState.Stopped)
                DeviceError(RnicDeviceError.CommandQueueStopped, StatusCommandError, status.ErrorIndex);
            else
                BadRegister(CmdqTail);
            return;
        }
        _commands.Kick();
    }

    private void OnEqGet(uint consumer)
    {
        var written = new List<RnicEventType>();
        if (!_eq.Consume(consumer, written, out bool failed, out ulong failedAddress))
        {
            BadRegister(EqGet);
            return;
        }
        foreach (var type in written)
            _interrupts.Raise(CauseOf(type));
        if (failed)
            DeviceError(RnicDeviceError.WriteBack, StatusBadRegister, failedAddress);
    }

    // Starts a reset: the command processor destroys every object and raises RESET_DONE when the engines are quiet.
    private void StartReset()
    {
        Interlocked.Increment(ref _resetGeneration);
        _commands.RequestReset();
    }

    /// <summary>Called by the command processor's reset: drops the queues' configuration.</summary>
    internal void ResetQueues()
    {
        _eq.Disable();
    }

    private void OnRegisterReset()
    {
        Volatile.Write(ref _enabled, 0);
        Volatile.Write(ref _doorbellErrors, 0);
        _eq.ResetCounters();
    }

    private void BadRegister(ulong offset) => DeviceError(RnicDeviceError.BadRegister, StatusBadRegister, offset);

    internal void ReportBusError()
    {
        _status.SetBits(StatusBusError);
        _interrupts.Raise(IntError);
    }

    internal void DoorbellDropped(ulong bar2Offset)
    {
        Interlocked.Increment(ref _doorbellErrors);
        DeviceError(RnicDeviceError.BadDoorbell, StatusDoorbellError, bar2Offset);
    }
}
