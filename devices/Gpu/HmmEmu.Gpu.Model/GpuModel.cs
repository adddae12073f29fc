using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Engines;
using HmmEmu.Hardware.Interrupts;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Registers;
using HmmEmu.Hardware.Rings;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;
using static HmmEmu.Gpu.GpuRegisters;

namespace HmmEmu.Gpu.Model;

/// <summary>
/// The HmmEmu GPU as hardware: BAR0 laid out exactly as <see cref="GpuRegisters"/> says, an MSI-X table of
/// <see cref="GpuRegisters.Vectors"/> vectors, a command processor and compute engine fed by the command ring (with
/// its own MMU and TLB, resumable kernels and a replayable fault buffer), TLB-invalidation registers covering every
/// engine, and a copy engine (a <see cref="DmaEngine"/>) for migrations between VRAM and system RAM.
/// </summary>
/// <remarks>
/// <para>Bad programming never throws into the host: a refused register write sets STATUS.BAD_REGISTER, a bad BAR
/// access STATUS.BUS_ERROR, a stopped command ring STATUS.COMMAND_ERROR, a copy-engine error STATUS.COPY_ERROR; each
/// also sets ERROR_CODE/ERROR_INFO (bus errors excepted) and raises INT_STATUS.ERROR, and the device keeps serving
/// other contexts. Bad commands and kernel arguments fail only their own context (CTX_STATUS).</para>
/// <para>Ring configuration is latched when CONTROL.ENABLE goes 0→1; a ring (or the fault buffer) whose base and size
/// are both 0 is simply not used. MSI-X vectors are masked at reset, as on PCI: the driver unmasks the ones it
/// uses (MSIX_VEC{n}).</para>
/// <para>INT_STATUS/INT_MASK are an <see cref="InterruptCauses"/> block, the latched ring and buffer registers are
/// <see cref="LatchedRegister"/>s, and the copy engine's registers a <see cref="DmaEngineRegisters"/> block. The
/// model's own state — the enable latch and the reset and TLBI counters — is atomics or guarded by
/// <see cref="_tlbiLock"/>; the engines own the rest.</para>
/// </remarks>
public sealed class GpuModel : IPciDevice, IMmio, IDmaInterruptSink, IDisposable
{
    private const uint MaxRingEntries = 4096;

    private static readonly TraceEventType s_deviceErrorEvent = new("gpu", "device_error", "code", "info");

    private readonly HostKernel _kernel;
    private readonly GpuComputeEngine _compute;
    private readonly EngineWorker<TlbiRequest> _tlbiWorker;
    private readonly Lock _tlbiLock = new();
    private readonly Register[] _ctxPtBase = new Register[Contexts];
    private readonly Register[] _ctxControl = new Register[Contexts];
    private readonly Register _control;
    private readonly Register _status;
    private readonly InterruptCauses _interrupts;
    private readonly LatchedRegister _cmdBase;
    private readonly LatchedRegister _cmdSize;
    private readonly LatchedRegister _faultBase;
    private readonly LatchedRegister _faultSize;
    private readonly DmaEngineRegisters _copyRegisters;
    private readonly Register _errorCode;
    private readonly Register _errorInfo;
    private readonly Register _tlbiContext;
    private readonly Register _tlbiAddress;
    private readonly Register _tlbiSize;
    private int _enabled;
    private int _resetStarting;
    private int _resetDoneOwed;
    private int _tlbiIssued;                 // under _tlbiLock (read atomically)
    private int _tlbiCompleted;
    private int _tlbiError;
    private long _tlbiGeneration;

    /// <summary>Creates the GPU on <paramref name="kernel"/>'s RAM; its engines' workers start at once and idle until rung.</summary>
    public GpuModel(HostKernel kernel, GpuModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        Options = options ?? GpuModelOptions.Default;
        var scheduler = kernel.Scheduler;
        SystemMemory = new SystemMemoryPort(kernel.Memory, watchFreeFrames: true);
        Vram = new VramPort(Options.VramBytes);
        Roots = new PageTableRoots(Contexts);
        ComputeMmu = new DeviceMmu(scheduler, Roots, SystemMemory, Vram,
            new DeviceMmuOptions { Name = "gpu.compute", TlbSets = Options.TlbSets, TlbWays = Options.TlbWays });
        CopyMmu = new DeviceMmu(scheduler, Roots, SystemMemory, Vram,
            new DeviceMmuOptions { Name = "gpu.ce", TlbSets = Options.TlbSets, TlbWays = Options.TlbWays });
        Msix = new MsixTable(Vectors, maskedAtReset: true, kernel.Trace);
        Bar0 = new RegisterFile("gpu.bar0", Bar0Size, kernel.Trace, onBusError: ReportBusError);
        // Created before the registers so that their hooks can use them; they raise nothing until the driver rings them.
        CopyEngine = new DmaEngine(scheduler, "gpu.ce", new GpuCopyTranslator(CopyMmu), SystemMemory, Vram, this, Options.CopyEngine);
        _compute = new GpuComputeEngine(this, scheduler, Options, ComputeMmu, SystemMemory, Vram);
        _tlbiWorker = new EngineWorker<TlbiRequest>(scheduler, "gpu tlbi", new TlbiHandler(this));

        // ---- identity and global control
        Bar0.Define32(Id, "ID", "Identity: 0x4750 [31:16], major [15:8], minor [7:0].", reset: IdValue);
        Bar0.Define32(Caps, "CAPS", "Contexts [7:0], compute engines [11:8], fault-record bytes [23:16].",
            reset: Contexts | (1u << 8) | ((uint)GpuFaultRecord.Size << 16));
        Bar0.Define64(VramSize, "VRAM_SIZE", "Bytes of device memory.", reset: Options.VramBytes);
        _control = Bar0.Define(new RegisterDefinition
        {
            Offset = Control,
            Name = "CONTROL",
            Description = "ENABLE latches the ring configuration (clearing it resets every engine); RESET resets every engine and keeps ENABLE.",
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
                new RegisterField("COPY_ERROR", 11, 1, FieldMode.WriteOneToClear),
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
                Cause("RESET_DONE", IntResetDone), Cause("ERROR", IntError), Cause("COPY_DONE", IntCopyDone),
                Cause("TLB_DONE", IntTlbDone), Cause("CONTEXT_ERROR", IntContextError), Cause("FAULT", IntFault), Cause("FENCE", IntFence),
            ],
            IntStatus, "Interrupt causes, latched even while masked, cleared by writing 1. FAULT sends vector 1, COPY_DONE 2, ERROR 3, the others 0.",
            IntMask, "A set bit latches its cause without sending the vector; clearing it sends the vector of a cause still latched.");
        Bar0.Define32(GpuRegisters.BusErrors, "BUS_ERRORS", "Bad BAR0 accesses so far (unknown offset, bad size or alignment).",
            onRead: _ => (ulong)Bar0.BusErrors);
        _errorCode = Bar0.Define32(ErrorCode, "ERROR_CODE", "The last device-level error (GpuDeviceError).");
        _errorInfo = Bar0.Define64(ErrorInfo, "ERROR_INFO", "Detail of ERROR_CODE: the command-ring index or the refused register's offset.");

        // ---- command ring
        _cmdBase = LatchedRegister.Define64(Bar0, CmdBase, "CMD_BASE", "Command ring bus address; latched when ENABLE is set, refused while enabled.",
            () => IsEnabled, OnRefused);
        _cmdSize = LatchedRegister.Define32(Bar0, CmdSize, "CMD_SIZE", "Command ring entries (a power of two, 2..4096); latched when ENABLE is set.",
            () => IsEnabled, OnRefused);
        Bar0.Define32(CmdTail, "CMD_TAIL", "Command doorbell: write the new producer index; reads the device's producer.",
            readWrite: ~0u, onWrite: (_, v) => OnCommandDoorbell((uint)v), onRead: _ => _compute.CommandRing.Producer);
        Bar0.Define32(CmdHead, "CMD_HEAD", "The command processor's consumer index: commands before it were dispatched.",
            onRead: _ => _compute.CommandRing.Consumer);
        Bar0.Define64(CmdStatus, "CMD_STATUS", "Command ring state [1:0], error [15:8], error index [63:32].",
            onRead: _ => _compute.CommandRing.Status.Pack());

        // ---- fault buffer
        _faultBase = LatchedRegister.Define64(Bar0, FaultBase, "FAULT_BASE", "Fault buffer bus address; latched when ENABLE is set, refused while enabled.",
            () => IsEnabled, OnRefused);
        _faultSize = LatchedRegister.Define32(Bar0, FaultSize, "FAULT_SIZE", "Fault records (a power of two, 2..4096); latched when ENABLE is set.",
            () => IsEnabled, OnRefused);
        Bar0.Define32(FaultGet, "FAULT_GET", "The driver's consumer index: records before it have been read.",
            readWrite: ~0u, onWrite: (_, v) => OnFaultGet((uint)v), onRead: _ => _compute.FaultBuffer.Consumer);
        Bar0.Define32(FaultPut, "FAULT_PUT", "The device's producer index: records before it are written.",
            onRead: _ => _compute.FaultBuffer.Producer);
        Bar0.Define32(FaultOverflows, "FAULT_OVERFLOWS", "Faults whose record did not fit (the work still stalls).",
            onRead: _ => _compute.FaultOverflows);
        Bar0.Define32(FaultReplay, "FAULT_REPLAY", "Any write makes every stalled context retry its faulting access.",
            writeOnly: ~0u, onWrite: (_, _) => OnFaultReplay());
        Bar0.Define32(FaultCancel, "FAULT_CANCEL", "Write a context id: its stalled command fails with FaultCancelled and the context stops.",
            writeOnly: ~0u, onWrite: (written, _) => OnFaultCancel((uint)written));

        // ---- TLB invalidation
        _tlbiContext = Bar0.Define32(TlbiContext, "TLBI_CONTEXT", "Context (address-space id) of the next invalidation.", readWrite: ~0u);
        _tlbiAddress = Bar0.Define64(TlbiAddress, "TLBI_ADDRESS", "First device virtual address of a range invalidation.", readWrite: ~0UL);
        _tlbiSize = Bar0.Define64(TlbiSize, "TLBI_SIZE", "Bytes of a range invalidation (non-zero, not wrapping).", readWrite: ~0UL);
        Bar0.Define32(TlbiTrigger, "TLBI_TRIGGER", "Starts an invalidation in every engine's TLB: 1 range, 2 context, 3 all; anything else is refused.",
            writeOnly: ~0u, onWrite: (written, _) => OnTlbiTrigger((uint)written));
        Bar0.Define32(TlbiStatus, "TLBI_STATUS", "DONE [0]: every issued invalidation completed; ERROR [1]: the last trigger was refused.",
            onRead: _ => ReadTlbiStatus());
        Bar0.Define32(TlbiIssued, "TLBI_ISSUED", "Invalidations accepted so far (wraps).", onRead: _ => (uint)Volatile.Read(ref _tlbiIssued));
        Bar0.Define32(TlbiCompleted, "TLBI_COMPLETED", "Invalidations completed so far, in issue order (in-flight accesses drained).",
            onRead: _ => (uint)Volatile.Read(ref _tlbiCompleted));

        // ---- copy engine
        _copyRegisters = new DmaEngineRegisters(Bar0, CopyEngine, new DmaEngineRegisterLayout
        {
            Offset = CeSqBase,
            Prefix = "CE_",
            RingUnusedWhenZero = true,
            SqBaseDescription = "Copy-engine submission ring bus address; latched when ENABLE is set.",
            SqSizeDescription = "Copy-engine submission ring entries (a power of two); latched when ENABLE is set.",
            SqTailDescription = "Copy-engine doorbell: write the new producer index; reads the device's producer.",
            SqHeadDescription = "The copy engine's consumer index.",
            CqBaseDescription = "Copy-engine completion ring bus address; latched when ENABLE is set.",
            CqSizeDescription = "Copy-engine completion ring entries (a power of two); latched when ENABLE is set.",
            CqTailDescription = "The copy engine's completion producer index.",
        }, () => IsEnabled, OnRefused);

        // ---- contexts
        for (int ctx = 0; ctx < Contexts; ctx++)
        {
            int id = ctx;
            ulong block = ContextBlock(ctx);
            _ctxPtBase[ctx] = Bar0.Define64(block + CtxPtBase, $"CTX{ctx}_PT_BASE",
                $"Context {ctx}'s root page-table entry (a table pointer), latched when VALID goes 0 to 1.", readWrite: ~0UL);
            _ctxControl[ctx] = Bar0.Define(new RegisterDefinition
            {
                Offset = block + CtxControl,
                Name = $"CTX{ctx}_CONTROL",
                Description = $"Context {ctx}: VALID latches PT_BASE and clears the error; clearing it fails the queued work (ContextInvalid).",
                Fields = [new RegisterField("VALID", 0, 1, FieldMode.ReadWrite)],
                OnWrite = (_, v) => _compute.SetValid(id, (v & CtxControlValid) != 0, _ctxPtBase[id].Value),
            });
            Bar0.Define32(block + CtxStatus, $"CTX{ctx}_STATUS", $"Context {ctx}: state [1:0], error [15:8].",
                onRead: _ => _compute.ReadStatus(id));
            Bar0.Define64(block + CtxErrorAddress, $"CTX{ctx}_ERROR_ADDRESS", $"Context {ctx}: the device address behind its error.",
                onRead: _ => _compute.ReadErrorAddress(id));
            Bar0.Define64(block + CtxCompleted, $"CTX{ctx}_COMPLETED", $"Context {ctx}: commands finished (ok or failed).",
                onRead: _ => _compute.ReadCompleted(id));
        }

        Msix.MapRegisters(Bar0, MsixControl, MsixVectorTable, MsixPba);
        Bar0.AddResetHook(OnRegisterReset);
        Bars = [this];
    }

    /// <summary>The options the model was built with.</summary>
    public GpuModelOptions Options { get; }

    /// <summary>BAR0's registers (also for <c>docs/</c>: <see cref="RegisterFile.ToMarkdown"/>).</summary>
    public RegisterFile Bar0 { get; }

    /// <summary>The interrupt table.</summary>
    public MsixTable Msix { get; }

    /// <summary>The device's memory. The machine registers it as device-private memory; a driver never touches it directly.</summary>
    public VramPort Vram { get; }

    /// <summary>System RAM as the device sees it (bus addresses).</summary>
    public SystemMemoryPort SystemMemory { get; }

    /// <summary>The page-table roots CTX_CONTROL.VALID latches (shared by every engine's MMU).</summary>
    public PageTableRoots Roots { get; }

    /// <summary>The compute engine's MMU and TLB.</summary>
    public DeviceMmu ComputeMmu { get; }

    /// <summary>The copy engine's MMU and TLB (contexts 1..15).</summary>
    public DeviceMmu CopyMmu { get; }

    /// <summary>The copy engine.</summary>
    public DmaEngine CopyEngine { get; }

    /// <summary>Whether CONTROL.ENABLE is set.</summary>
    public bool IsEnabled => Volatile.Read(ref _enabled) != 0;

    /// <summary>Whether a reset was requested and the device is not quiet yet (STATUS.RESET_PENDING).</summary>
    public bool ResetPending => Volatile.Read(ref _resetDoneOwed) != 0 || _compute.ResetPending || CopyEngine.ResetPending;

    /// <summary>Replayable faults the compute engine took so far (recorded or overflowed).</summary>
    public uint FaultsTaken => _compute.FaultsTaken;

    /// <summary>Test knob: whether the compute engine is held at the gate (see <see cref="ArmComputeGate"/>).</summary>
    public bool ComputeGateHeld => _compute.GateHeld;

    /// <inheritdoc />
    public ushort VendorId => GpuRegisters.VendorId;

    /// <inheritdoc />
    public ushort DeviceId => GpuRegisters.DeviceId;

    /// <inheritdoc />
    public uint ClassCode => GpuRegisters.ClassCode;

    /// <inheritdoc />
    public IReadOnlyList<IMmio?> Bars { get; }

    /// <inheritdoc />
    public int VectorCount => Msix.VectorCount;

    /// <inheritdoc />
    ulong IMmio.Size => Bar0.Size;

    /// <inheritdoc />
    public void Attach(IInterruptSink interrupts) => Msix.Connect(interrupts);

    /// <summary>
    /// Test knob: the compute step after <paramref name="stepsBefore"/> more steps stops inside its MMU use (its
    /// pages translated and in use, no data moved yet) until <see cref="ReleaseComputeGate"/>, so that a test can act
    /// while a kernel chunk is provably in flight in either scheduler mode.
    /// </summary>
    public void ArmComputeGate(int stepsBefore) => _compute.ArmGate(stepsBefore);

    /// <summary>Test knob: lets a held compute step go on and opens the gate.</summary>
    public void ReleaseComputeGate() => _compute.ReleaseGate();

    /// <summary>
    /// Function-level reset: every engine stops (queued and running commands discarded without fences, copy
    /// descriptors aborted), then every register returns to its reset value, vectors are masked, contexts are invalid
    /// and every TLB is flushed. May sleep (waits, in virtual time, for the engines to be quiet).
    /// </summary>
    public void FunctionLevelReset()
    {
        Volatile.Write(ref _enabled, 0);
        _compute.CommandRing.Disable();
        StartReset();
        for (int i = 0; ResetPending; i++)
        {
            if (i > 1_000_000)
                throw new TimeoutException("gpu: the engines did not finish their reset during a function-level reset.");
            _kernel.Scheduler.Sleep(100);
        }
        Bar0.Reset();
    }

    /// <inheritdoc />
    ulong IMmio.Read(ulong offset, int size) => Bar0.Read(offset, size);

    /// <inheritdoc />
    void IMmio.Write(ulong offset, int size, ulong value) => Bar0.Write(offset, size, value);

    /// <summary>Copy-engine interrupts: COPY_DONE, the reset's completion, or an error. Never sleeps.</summary>
    void IDmaInterruptSink.Raise(DmaInterrupt cause)
    {
        switch (cause)
        {
            case DmaInterrupt.Completion:
                Signal(IntCopyDone);
                break;
            case DmaInterrupt.ResetDone:
                MaybeResetDone();
                break;
            default:
                DeviceError(GpuDeviceError.CopyEngine, StatusCopyError, CopyEngine.Submission.Status.Pack());
                break;
        }
    }

    /// <summary>Shuts every engine down (aborting what they hold) and waits for their workers.</summary>
    public void Dispose()
    {
        _compute.Dispose();
        _tlbiWorker.Dispose();
        CopyEngine.Dispose();
    }

    // ---- called by the compute engine (any thread; never sleep) ---------------------------------------------------

    /// <summary>Latches <paramref name="cause"/> in INT_STATUS and sends its vector unless INT_MASK holds it back. Never sleeps.</summary>
    internal void Signal(uint cause) => _interrupts.Raise(cause);

    /// <summary>Reports a device-level error: ERROR_CODE/INFO, a STATUS error bit, INT_STATUS.ERROR. Never sleeps.</summary>
    internal void DeviceError(GpuDeviceError code, uint statusBit, ulong info)
    {
        _errorCode.Set((ulong)code);
        _errorInfo.Set(info);
        _kernel.Trace.Record(s_deviceErrorEvent, (ulong)code, info);
        _status.SetBits(statusBit);
        Signal(IntError);
    }

    /// <summary>The command ring stopped at <paramref name="index"/>. Never sleeps.</summary>
    internal void CommandRingStopped(uint index) => DeviceError(GpuDeviceError.CommandRingStopped, StatusCommandError, index);

    /// <summary>A reset cleared <paramref name="context"/>'s VALID bit. Never sleeps.</summary>
    internal void ContextInvalidatedByReset(ushort context) => _ctxControl[context].ClearBits(CtxControlValid);

    /// <summary>The compute engine finished a reset. Never sleeps.</summary>
    internal void ComputeResetDone() => MaybeResetDone();

    // ---- register handlers (driver threads; never sleep) ----------------------------------------------------------

    private static InterruptCause Cause(string name, uint bit) => new(name, bit, VectorOf(bit));

    private void OnRefused(Register register, ulong value) => BadRegister(register.Offset);

    private void OnControlWrite(ulong written, ulong value)
    {
        bool enable = (value & ControlEnable) != 0;
        bool wasEnabled = Interlocked.Exchange(ref _enabled, enable ? 1 : 0) != 0;
        if ((written & ControlReset) != 0)
        {
            _control.ClearBits(ControlReset);
            if (wasEnabled == enable)
                StartReset();
        }
        if (wasEnabled && !enable)
        {
            _compute.CommandRing.Disable();
            StartReset();
        }
        else if (!wasEnabled && enable)
        {
            ConfigureOnEnable();
        }
    }

    // The configuration the driver wrote while disabled becomes the engines': every ring restarts at index 0.
    private void ConfigureOnEnable()
    {
        ulong cmdBase = _cmdBase.Value, cmdSize = _cmdSize.Value;
        _compute.CommandRing.Disable();
        if (cmdBase != 0 || cmdSize != 0)
        {
            if (!IsRingSize(cmdSize) || _compute.CommandRing.Configure(cmdBase, (uint)cmdSize) != RingError.None)
            {
                _compute.CommandRing.Disable();
                DeviceError(GpuDeviceError.BadCommandRing, StatusCommandError, cmdSize);
            }
        }
        ulong faultBase = _faultBase.Value, faultSize = _faultSize.Value;
        _compute.FaultBuffer.Disable();
        if (faultBase != 0 || faultSize != 0)
        {
            if (!IsRingSize(faultSize) || _compute.FaultBuffer.Configure(faultBase, (uint)faultSize) != RingError.None)
            {
                _compute.FaultBuffer.Disable();
                DeviceError(GpuDeviceError.BadFaultBuffer, StatusBadRegister, faultSize);
            }
        }
        _copyRegisters.ConfigureEngine();
        _compute.Kick();
    }

    private static bool IsRingSize(ulong size) => size is >= 2 and <= MaxRingEntries && (size & (size - 1)) == 0;

    private void OnCommandDoorbell(uint producer)
    {
        if (!IsEnabled)
        {
            BadRegister(CmdTail);
            return;
        }
        if (!_compute.CommandRing.Doorbell(producer))
        {
            var status = _compute.CommandRing.Status;
            if (status.State == RingState.Stopped)
                CommandRingStopped(status.ErrorIndex);
            else
                BadRegister(CmdTail);
            return;
        }
        _compute.Kick();
    }

    private void OnFaultGet(uint consumer)
    {
        if (!_compute.FaultBuffer.Consume(consumer))
            BadRegister(FaultGet);
    }

    /// <summary>
    /// The contexts stalled on a replayable fault that the driver has not answered (no FAULT_REPLAY or FAULT_CANCEL
    /// since the fault), in id order. At quiescence a correct driver leaves none (every fault answered, INV-13); a
    /// context whose answer is written but not yet acted on does not count. For debuggers and coherence checkers;
    /// never sleeps.
    /// </summary>
    public IReadOnlyList<int> UnansweredStalls() => _compute.UnansweredStalls();

    private void OnFaultReplay() => _compute.Replay();

    private void OnFaultCancel(uint context)
    {
        if (context >= Contexts)
        {
            BadRegister(FaultCancel);
            return;
        }
        _compute.Cancel((int)context);
    }

    private void OnTlbiTrigger(uint command)
    {
        ulong ctx = _tlbiContext.Value, address = _tlbiAddress.Value, size = _tlbiSize.Value;
        bool ok = command switch
        {
            TlbiRange => ctx < Contexts && size != 0 && address + size > address,
            TlbiContextAll => ctx < Contexts,
            TlbiAll => true,
            _ => false,
        };
        if (!ok)
        {
            Volatile.Write(ref _tlbiError, 1);
            BadRegister(TlbiTrigger);
            return;
        }
        lock (_tlbiLock)
        {
            // Both TLBs drop their entries now; the request completes, in issue order, once their uses drained.
            var compute = Invalidate(ComputeMmu.Tlb, command, (ushort)ctx, address, size);
            var copy = Invalidate(CopyMmu.Tlb, command, (ushort)ctx, address, size);
            Volatile.Write(ref _tlbiError, 0);
            Volatile.Write(ref _tlbiIssued, _tlbiIssued + 1);
            _tlbiWorker.Post(new TlbiRequest(Interlocked.Read(ref _tlbiGeneration), compute, copy));
        }
    }

    private static TlbInvalidation Invalidate(DeviceTlb tlb, uint command, ushort ctx, ulong address, ulong size) => command switch
    {
        TlbiRange => tlb.InvalidateRange(ctx, address, address + size),
        TlbiContextAll => tlb.InvalidateAsid(ctx),
        _ => tlb.InvalidateAll(),
    };

    private ulong ReadTlbiStatus() =>
        (Volatile.Read(ref _tlbiCompleted) == Volatile.Read(ref _tlbiIssued) ? TlbiStatusDone : 0) |
        (Volatile.Read(ref _tlbiError) != 0 ? TlbiStatusError : 0);

    // Runs on the TLBI worker: waits for the request's uses to drain, then advances TLBI_COMPLETED. May sleep.
    private void CompleteTlbi(TlbiRequest request)
    {
        request.Compute.Wait();
        request.Copy.Wait();
        if (request.Generation != Interlocked.Read(ref _tlbiGeneration))
            return;
        Interlocked.Increment(ref _tlbiCompleted);
        Signal(IntTlbDone);
    }

    // Starts a reset of every engine; RESET_DONE is raised once all of them are quiet. Never sleeps.
    private void StartReset()
    {
        Volatile.Write(ref _resetDoneOwed, 1);
        Interlocked.Increment(ref _resetStarting);
        CopyEngine.Reset();
        CopyMmu.Tlb.InvalidateAll();
        _compute.RequestReset();
        Interlocked.Decrement(ref _resetStarting);
        MaybeResetDone();
    }

    private void MaybeResetDone()
    {
        if (Volatile.Read(ref _resetStarting) != 0 || _compute.ResetPending || CopyEngine.ResetPending)
            return;
        if (Interlocked.Exchange(ref _resetDoneOwed, 0) == 1)
            Signal(IntResetDone);
    }

    private void OnRegisterReset()
    {
        Volatile.Write(ref _enabled, 0);
        _compute.ResetRegisterState();
        for (ushort ctx = 0; ctx < Contexts; ctx++)
            Roots.Clear(ctx);
        ComputeMmu.Tlb.InvalidateAll();
        CopyMmu.Tlb.InvalidateAll();
        lock (_tlbiLock)
        {
            Interlocked.Increment(ref _tlbiGeneration);
            Volatile.Write(ref _tlbiIssued, 0);
            Volatile.Write(ref _tlbiCompleted, 0);
            Volatile.Write(ref _tlbiError, 0);
        }
        Volatile.Write(ref _resetDoneOwed, 0);
    }

    private void BadRegister(ulong offset) => DeviceError(GpuDeviceError.BadRegister, StatusBadRegister, offset);

    private void ReportBusError()
    {
        _status.SetBits(StatusBusError);
        Signal(IntError);
    }

    /// <summary>Adapts the TLBI worker's callbacks to the model.</summary>
    private sealed class TlbiHandler(GpuModel model) : IEngineWorkHandler<TlbiRequest>
    {
        public void Run(TlbiRequest item) => model.CompleteTlbi(item);

        public void Abort(TlbiRequest item)
        {
            // Shutting down: nobody waits for TLBI_COMPLETED any more.
        }
    }
}
