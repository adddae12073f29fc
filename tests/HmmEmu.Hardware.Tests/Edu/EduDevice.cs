using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Interrupts;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Registers;
using HmmEmu.Hardware.Translation;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;
using static HmmEmu.Hardware.Tests.Edu.EduRegisters;

namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>
/// The edu test device (after QEMU's edu), built only from the blocks: BAR0 is a <see cref="RegisterFile"/> laid out
/// as <see cref="EduRegisters"/> says, a ring-fed <see cref="DmaEngine"/> whose translator is a <see cref="DeviceMmu"/>
/// (id 0 bypass), TLB-invalidate registers, and an <see cref="MsixTable"/> with a DMA vector and an error vector.
/// </summary>
/// <remarks>
/// Bad programming never throws into the host: a refused register write sets STATUS.BAD_REGISTER, a bad BAR access
/// sets STATUS.BUS_ERROR, engine errors set STATUS.ENGINE_ERROR; each raises the error cause, and the device keeps
/// serving. INT_STATUS/INT_MASK are an <see cref="InterruptCauses"/> block and the ring registers a
/// <see cref="DmaEngineRegisters"/> block (which latches the ring configuration). The model's own state is the enable
/// latch and the list of invalidations not yet drained; each is atomic or guarded by <c>_tlbLock</c>.
/// </remarks>
internal sealed class EduDevice : IPciDevice, IMmio, IDmaInterruptSink, IDisposable
{
    /// <summary>PCI vendor id (QEMU's).</summary>
    public const ushort Vendor = 0x1234;

    /// <summary>PCI device id (QEMU's edu).</summary>
    public const ushort Device = 0x11e8;

    private static readonly TraceEventType s_badRegisterEvent = new("edu", "bad_register", "offset", "value");

    private readonly HostKernel _kernel;
    private readonly Lock _tlbLock = new();
    private readonly List<TlbInvalidation> _tlbPending = [];   // under _tlbLock: issued and not yet seen complete
    private readonly Register _control;
    private readonly Register _status;
    private readonly InterruptCauses _interrupts;
    private readonly DmaEngineRegisters _dma;
    private readonly Register _tlbAsid;
    private readonly Register _tlbAddr;
    private readonly Register _tlbSize;
    private int _enabled;
    private bool _tlbError;                                       // under _tlbLock
    private long _badRegisterWrites;

    /// <summary>Creates the device on <paramref name="kernel"/>'s RAM; its DMA engine's worker starts at once.</summary>
    public EduDevice(HostKernel kernel, DmaEngineOptions? dmaOptions = null)
    {
        _kernel = kernel;
        Memory = new SystemMemoryPort(kernel.Memory);
        Roots = new PageTableRoots(Contexts);
        Mmu = new DeviceMmu(kernel.Scheduler, Roots, Memory, options: new DeviceMmuOptions { Name = "edu.dma" });
        Translator = new EduTranslator(kernel.Scheduler, new BusAddressTranslator(Memory), Mmu);
        Msix = new MsixTable(Vectors, maskedAtReset: true, kernel.Trace);
        Bar0 = new RegisterFile("edu.bar0", Bar0Size, kernel.Trace, onBusError: () => ReportError(StatusBusError));
        // Created before the registers so their hooks can use it; it raises nothing until the driver rings it.
        Engine = new DmaEngine(kernel.Scheduler, "edu", Translator, Memory, vram: null, interrupts: this, dmaOptions);

        Bar0.Define32(Id, "ID", "Identity: major [31:24], minor [23:16], 0x00ED [15:0].", reset: IdValue);
        Bar0.Define32(Liveness, "LIVENESS", "Liveness check: reads back the bitwise NOT of the value written.",
            readWrite: ~0u, onRead: static v => ~v);
        _control = Bar0.Define(new RegisterDefinition
        {
            Offset = Control,
            Name = "CONTROL",
            Description = "ENABLE latches the ring configuration and starts both rings at 0 (clearing it resets the engine); RESET resets the engine and flushes the TLB.",
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
                new RegisterField("BUS_ERROR", 10, 1, FieldMode.WriteOneToClear),
                new RegisterField("ENGINE_ERROR", 9, 1, FieldMode.WriteOneToClear),
                new RegisterField("BAD_REGISTER", 8, 1, FieldMode.WriteOneToClear),
                new RegisterField("RESET_PENDING", 1, 1, FieldMode.ReadOnly),
                new RegisterField("ENABLED", 0, 1, FieldMode.ReadOnly),
            ],
            OnRead = stored => (stored & StatusErrors) | (IsEnabled ? StatusEnabled : 0) |
                (Engine.ResetPending ? StatusResetPending : 0),
        });
        _interrupts = new InterruptCauses(Bar0, Msix,
            [new("RESET_DONE", IntResetDone, VectorDma), new("ERROR", IntError, VectorError), new("DMA_DONE", IntDmaDone, VectorDma)],
            IntStatus, "Interrupt causes, latched until cleared by writing 1. DMA_DONE and RESET_DONE send vector 0, ERROR vector 1.",
            IntMask, "A set bit latches its cause in INT_STATUS without sending the vector; clearing it sends the vector of a cause still latched.");
        Bar0.Define32(EduRegisters.BusErrors, "BUS_ERRORS", "Bad BAR0 accesses so far (unknown offset, bad size or alignment).",
            onRead: _ => (ulong)Bar0.BusErrors);

        _dma = new DmaEngineRegisters(Bar0, Engine, new DmaEngineRegisterLayout { Offset = SqBase },
            () => IsEnabled, (register, value) => BadRegister(register.Offset, value));
        Bar0.Define64(DmaFinished, "DMA_FINISHED", "Descriptors finished: completed, failed, skipped or aborted.",
            onRead: _ => (ulong)Engine.Stats.Finished);
        Bar0.Define64(DmaDropped, "DMA_DROPPED", "Completion records the device could not post (each also raised an error).",
            onRead: _ => (ulong)Engine.Stats.DroppedCompletions);

        for (int asid = 1; asid < Contexts; asid++)
        {
            ushort id = (ushort)asid;
            Bar0.Define64(PtBaseOf(asid), $"PT_BASE{asid}",
                $"Root page-table entry of address space {asid} (table pointer: V set, L and rights clear).",
                readWrite: ~0UL, onWrite: (_, v) => OnPageTableBaseWrite(id, v));
        }
        _tlbAsid = Bar0.Define32(TlbAsid, "TLB_ASID", "Address-space id of the next invalidation.", readWrite: 0xFFFF);
        _tlbAddr = Bar0.Define64(TlbAddr, "TLB_ADDR", "First device address of a range invalidation.", readWrite: ~0UL);
        _tlbSize = Bar0.Define64(TlbSize, "TLB_SIZE", "Bytes of a range invalidation (non-zero, not wrapping).", readWrite: ~0UL);
        Bar0.Define32(TlbCmd, "TLB_CMD", "Starts an invalidation: 1 range, 2 address space, 3 all; anything else is refused.",
            writeOnly: ~0u, onWrite: (written, _) => OnTlbCommand((uint)written));
        Bar0.Define32(TlbStatus, "TLB_STATUS", "DONE [0]: every invalidation issued has drained (in-flight DMA included); ERROR [1]: last command refused.",
            onRead: _ => ReadTlbStatus());
        Msix.MapRegisters(Bar0, MsixControl, MsixVectorTable, MsixPba);
        Bar0.AddResetHook(OnRegisterReset);

        Bars = [this];
    }

    /// <summary>BAR0's registers.</summary>
    public RegisterFile Bar0 { get; }

    /// <summary>The interrupt table.</summary>
    public MsixTable Msix { get; }

    /// <summary>The DMA engine.</summary>
    public DmaEngine Engine { get; }

    /// <summary>The MMU of the DMA engine (ids 1..7).</summary>
    public DeviceMmu Mmu { get; }

    /// <summary>The page-table roots the PT_BASE registers set.</summary>
    public PageTableRoots Roots { get; }

    /// <summary>The DMA engine's translation step (with the test gate).</summary>
    public EduTranslator Translator { get; }

    /// <summary>System RAM as the device sees it.</summary>
    public SystemMemoryPort Memory { get; }

    /// <summary>Whether CONTROL.ENABLE is set.</summary>
    public bool IsEnabled => Volatile.Read(ref _enabled) != 0;

    /// <summary>Register writes refused so far (STATUS.BAD_REGISTER events).</summary>
    public long BadRegisterWrites => Interlocked.Read(ref _badRegisterWrites);

    /// <summary>Invalidations issued and not yet seen drained by a TLB_STATUS read.</summary>
    public int TlbPending
    {
        get { lock (_tlbLock) return _tlbPending.Count; }
    }

    /// <inheritdoc />
    public ushort VendorId => Vendor;

    /// <inheritdoc />
    public ushort DeviceId => Device;

    /// <inheritdoc />
    public uint ClassCode => 0x00ff00;

    /// <inheritdoc />
    public IReadOnlyList<IMmio?> Bars { get; }

    /// <inheritdoc />
    public int VectorCount => Msix.VectorCount;

    /// <inheritdoc />
    ulong IMmio.Size => Bar0.Size;

    /// <inheritdoc />
    public void Attach(IInterruptSink interrupts) => Msix.Connect(interrupts);

    /// <summary>
    /// Function-level reset: the engine aborts what it holds (waiting for that, in virtual time), then every register
    /// returns to its reset value, the vectors are masked, the page-table roots are cleared and the TLB is flushed.
    /// May sleep.
    /// </summary>
    public void FunctionLevelReset()
    {
        Volatile.Write(ref _enabled, 0);
        Engine.Reset();
        for (int i = 0; Engine.ResetPending; i++)
        {
            if (i > 1_000_000)
                throw new TimeoutException("edu: the DMA engine did not finish its reset during a function-level reset.");
            _kernel.Scheduler.Sleep(100);
        }
        Bar0.Reset();
    }

    /// <inheritdoc />
    ulong IMmio.Read(ulong offset, int size) => Bar0.Read(offset, size);

    /// <inheritdoc />
    void IMmio.Write(ulong offset, int size, ulong value) => Bar0.Write(offset, size, value);

    /// <summary>Engine interrupts: latch the cause and send its vector unless masked. Never sleeps.</summary>
    void IDmaInterruptSink.Raise(DmaInterrupt cause)
    {
        switch (cause)
        {
            case DmaInterrupt.Completion:
                _interrupts.Raise(IntDmaDone);
                break;
            case DmaInterrupt.ResetDone:
                _interrupts.Raise(IntResetDone);
                break;
            default:
                ReportError(StatusEngineError);
                break;
        }
    }

    /// <summary>Shuts the engine down (aborting what it holds).</summary>
    public void Dispose() => Engine.Dispose();

    private void OnControlWrite(ulong written, ulong value)
    {
        bool enable = (value & ControlEnable) != 0;
        bool wasEnabled = Interlocked.Exchange(ref _enabled, enable ? 1 : 0) != 0;
        if ((written & ControlReset) != 0)
        {
            _control.ClearBits(ControlReset);
            ResetEngine();
        }
        if (wasEnabled && !enable)
        {
            Engine.Reset();
        }
        else if (!wasEnabled && enable)
        {
            // The configuration the driver wrote while disabled becomes the engine's: both rings restart at 0.
            _dma.ConfigureEngine();
        }
    }

    private void ResetEngine()
    {
        Engine.Reset();
        var ticket = Mmu.Tlb.InvalidateAll();
        lock (_tlbLock)
            _tlbPending.Add(ticket);
    }

    private void OnPageTableBaseWrite(ushort asid, ulong value)
    {
        var root = new DevicePte(value);
        Roots[asid] = root;
        // Stored as written (the walker reports a malformed root as BadTable), but flagged now.
        if (value != 0 && (!root.IsTable || root.HasReservedBits || root.Permissions != PtePermissions.None))
            BadRegister(PtBaseOf(asid), value);
    }

    private void OnTlbCommand(uint command)
    {
        ulong asid = _tlbAsid.Value, addr = _tlbAddr.Value, size = _tlbSize.Value;
        TlbInvalidation? ticket = command switch
        {
            TlbCmdRange when asid < Contexts && size != 0 && addr + size > addr => Mmu.Tlb.InvalidateRange((ushort)asid, addr, addr + size),
            TlbCmdAsid when asid < Contexts => Mmu.Tlb.InvalidateAsid((ushort)asid),
            TlbCmdAll => Mmu.Tlb.InvalidateAll(),
            _ => null,
        };
        lock (_tlbLock)
        {
            _tlbError = ticket is null;
            if (ticket is not null)
                _tlbPending.Add(ticket);
        }
        if (ticket is null)
            BadRegister(TlbCmd, command);
    }

    private ulong ReadTlbStatus()
    {
        lock (_tlbLock)
        {
            _tlbPending.RemoveAll(static t => t.IsComplete);
            return (_tlbPending.Count == 0 ? TlbStatusDone : 0) | (_tlbError ? TlbStatusError : 0);
        }
    }

    private void OnRegisterReset()
    {
        Volatile.Write(ref _enabled, 0);
        for (ushort asid = 0; asid < Contexts; asid++)
            Roots.Clear(asid);
        var ticket = Mmu.Tlb.InvalidateAll();
        lock (_tlbLock)
        {
            _tlbPending.Clear();
            _tlbError = false;
            if (!ticket.IsComplete)
                _tlbPending.Add(ticket);
        }
    }

    private void BadRegister(ulong offset, ulong value)
    {
        Interlocked.Increment(ref _badRegisterWrites);
        _kernel.Trace.Record(s_badRegisterEvent, offset, value);
        ReportError(StatusBadRegister);
    }

    private void ReportError(uint statusBit)
    {
        _status.SetBits(statusBit);
        _interrupts.Raise(IntError);
    }
}
