namespace HmmEmu.Gpu;

/// <summary>
/// BAR0 of the HmmEmu GPU: offsets and bit fields (the programming manual; <c>docs/gpu.md</c> prints the model's
/// register map from the same declarations). All registers are little-endian; 64-bit registers take 8-byte accesses,
/// 32-bit ones 4-byte accesses; anything else reads all-ones, is dropped and counted in BUS_ERRORS.
/// </summary>
/// <remarks>
/// <para>Ring and buffer configuration (CMD_*, FAULT_BASE/SIZE, CE_*) is latched when CONTROL.ENABLE goes from 0 to 1, as
/// an NVMe controller latches its queues; writes to those registers while enabled are refused (the register keeps its
/// value) with STATUS.BAD_REGISTER and the error interrupt. Clearing ENABLE or writing CONTROL.RESET stops every engine:
/// work in flight ends with <see cref="GpuContextError.DeviceReset"/>, every context is invalidated, every TLB is
/// flushed, and RESET_DONE is raised when the device is quiet again.</para>
/// <para>Ring indices (CMD_HEAD/TAIL, FAULT_GET/PUT, CE_*) count modulo twice the ring size: the bit above the entry
/// index is the wrap bit, so equal indices mean empty and indices that differ only in the wrap bit mean full.</para>
/// </remarks>
public static class GpuRegisters
{
    /// <summary>BAR0 size.</summary>
    public const ulong Bar0Size = 0x4000;

    /// <summary>PCI vendor id (a made-up one).</summary>
    public const ushort VendorId = 0x1E4D;

    /// <summary>PCI device id.</summary>
    public const ushort DeviceId = 0x6701;

    /// <summary>PCI class code: display controller, 3D (0x0302).</summary>
    public const uint ClassCode = 0x03_02_00;

    // ---- identity and global control -------------------------------------------------------------------------

    /// <summary>ID (RO): 0x4750 ("GP") [31:16], major [15:8], minor [7:0].</summary>
    public const ulong Id = 0x000;

    /// <summary>CAPS (RO): contexts [7:0], compute engines [11:8], fault-record size in bytes [23:16].</summary>
    public const ulong Caps = 0x004;

    /// <summary>VRAM_SIZE (64-bit RO): bytes of device memory.</summary>
    public const ulong VramSize = 0x008;

    /// <summary>CONTROL: ENABLE [0] RW, RESET [1] WO (writing 1 resets every engine, keeps ENABLE).</summary>
    public const ulong Control = 0x010;

    /// <summary>STATUS: ENABLED [0] RO, RESET_PENDING [1] RO, error bits [11:8] W1C.</summary>
    public const ulong Status = 0x014;

    /// <summary>INT_STATUS (W1C): the causes below; a cause is latched even while masked.</summary>
    public const ulong IntStatus = 0x018;

    /// <summary>INT_MASK (RW): a set bit keeps its cause latched in INT_STATUS without sending its vector; clearing it
    /// sends the vector of a cause still latched.</summary>
    public const ulong IntMask = 0x01C;

    /// <summary>BUS_ERRORS (RO): bad BAR0 accesses so far (unknown offsets, bad sizes, misalignment).</summary>
    public const ulong BusErrors = 0x020;

    /// <summary>ERROR_CODE (RO): the last device-level error (<see cref="GpuDeviceError"/>).</summary>
    public const ulong ErrorCode = 0x024;

    /// <summary>ERROR_INFO (64-bit RO): detail of ERROR_CODE (the command-ring index, or the refused register's offset).</summary>
    public const ulong ErrorInfo = 0x028;

    // ---- command ring (one, owned by the kernel driver; commands name their context) ----------------------------

    /// <summary>CMD_BASE (64-bit RW, latched on enable): bus address of the command ring.</summary>
    public const ulong CmdBase = 0x040;

    /// <summary>CMD_SIZE (RW, latched on enable): command ring entries, a power of two from 2 to 4096.</summary>
    public const ulong CmdSize = 0x048;

    /// <summary>CMD_TAIL (doorbell): the driver's producer index; reads the device's view of it.</summary>
    public const ulong CmdTail = 0x04C;

    /// <summary>CMD_HEAD (RO): the command processor's consumer index (commands before it have been dispatched).</summary>
    public const ulong CmdHead = 0x050;

    /// <summary>CMD_STATUS (64-bit RO): ring state [1:0], error [15:8], error index [63:32].</summary>
    public const ulong CmdStatus = 0x058;

    // ---- replayable fault buffer --------------------------------------------------------------------------------

    /// <summary>FAULT_BASE (64-bit RW, latched on enable): bus address of the fault buffer.</summary>
    public const ulong FaultBase = 0x080;

    /// <summary>FAULT_SIZE (RW, latched on enable): fault records, a power of two from 2 to 4096.</summary>
    public const ulong FaultSize = 0x088;

    /// <summary>FAULT_GET (RW): the driver's consumer index: records before it have been read.</summary>
    public const ulong FaultGet = 0x08C;

    /// <summary>FAULT_PUT (RO): the device's producer index: records before it are written.</summary>
    public const ulong FaultPut = 0x090;

    /// <summary>FAULT_OVERFLOWS (RO): faults whose record did not fit (the work still stalls and re-faults on replay).</summary>
    public const ulong FaultOverflows = 0x094;

    /// <summary>FAULT_REPLAY (WO doorbell): any write makes every stalled engine retry its faulting access.</summary>
    public const ulong FaultReplay = 0x098;

    /// <summary>FAULT_CANCEL (WO doorbell): write a context id; its stalled work fails with
    /// <see cref="GpuContextError.FaultCancelled"/> and the context stops.</summary>
    public const ulong FaultCancel = 0x09C;

    // ---- TLB invalidation (covers every engine's TLB) -------------------------------------------------------------

    /// <summary>TLBI_CONTEXT (RW): context (address-space id) of the next invalidation.</summary>
    public const ulong TlbiContext = 0x0C0;

    /// <summary>TLBI_ADDRESS (64-bit RW): first device virtual address of a range invalidation.</summary>
    public const ulong TlbiAddress = 0x0C8;

    /// <summary>TLBI_SIZE (64-bit RW): bytes of a range invalidation (non-zero, not wrapping).</summary>
    public const ulong TlbiSize = 0x0D0;

    /// <summary>TLBI_TRIGGER (WO doorbell): 1 range, 2 context, 3 all; anything else is refused (TLBI_STATUS.ERROR).</summary>
    public const ulong TlbiTrigger = 0x0D8;

    /// <summary>TLBI_STATUS (RO): DONE [0] once every issued invalidation has completed; ERROR [1] if the last trigger
    /// was refused.</summary>
    public const ulong TlbiStatus = 0x0DC;

    /// <summary>TLBI_ISSUED (RO): invalidations accepted so far (32-bit, wraps).</summary>
    public const ulong TlbiIssued = 0x0E0;

    /// <summary>TLBI_COMPLETED (RO): invalidations completed so far, in issue order: invalidation n (1-based) is done
    /// when TLBI_COMPLETED − n, as a signed 32-bit number, is ≥ 0. Completed means removed from every TLB and every
    /// in-flight access that used a removed translation has ended.</summary>
    public const ulong TlbiCompleted = 0x0E4;

    // ---- copy engine (a DMA engine for migrations) -----------------------------------------------------------------

    /// <summary>CE_SQ_BASE (64-bit RW, latched on enable): bus address of the copy engine's submission ring.</summary>
    public const ulong CeSqBase = 0x100;

    /// <summary>CE_SQ_SIZE (RW, latched on enable): entries, a power of two.</summary>
    public const ulong CeSqSize = 0x108;

    /// <summary>CE_SQ_TAIL (doorbell): the driver's producer index; reads the device's producer.</summary>
    public const ulong CeSqTail = 0x10C;

    /// <summary>CE_SQ_HEAD (RO): the copy engine's consumer index.</summary>
    public const ulong CeSqHead = 0x110;

    /// <summary>CE_SQ_STATUS (64-bit RO): ring state [1:0], error [15:8], error index [63:32].</summary>
    public const ulong CeSqStatus = 0x118;

    /// <summary>CE_CQ_BASE (64-bit RW, latched on enable): bus address of the copy engine's completion ring.</summary>
    public const ulong CeCqBase = 0x120;

    /// <summary>CE_CQ_SIZE (RW, latched on enable): entries, a power of two.</summary>
    public const ulong CeCqSize = 0x128;

    /// <summary>CE_CQ_HEAD (doorbell): the driver's consumer index.</summary>
    public const ulong CeCqHead = 0x12C;

    /// <summary>CE_CQ_TAIL (RO): the copy engine's producer index.</summary>
    public const ulong CeCqTail = 0x130;

    /// <summary>CE_CQ_STATUS (64-bit RO): as CE_SQ_STATUS.</summary>
    public const ulong CeCqStatus = 0x138;

    // ---- per-context registers ------------------------------------------------------------------------------------

    /// <summary>First context block; context n's block is at <see cref="ContextBlock"/>(n).</summary>
    public const ulong ContextBase = 0x1000;

    /// <summary>Bytes per context block.</summary>
    public const ulong ContextStride = 0x40;

    /// <summary>CTX_PT_BASE (64-bit RW, block offset 0x00): the root page-table entry (a valid table entry), latched
    /// when CTX_CONTROL.VALID goes from 0 to 1.</summary>
    public const ulong CtxPtBase = 0x00;

    /// <summary>CTX_CONTROL (RW, block offset 0x08): VALID [0]. Setting VALID latches CTX_PT_BASE and clears the
    /// context's error; clearing it fails the context's queued work with <see cref="GpuContextError.ContextInvalid"/>.</summary>
    public const ulong CtxControl = 0x08;

    /// <summary>CTX_STATUS (RO, block offset 0x0C): state [1:0] (<see cref="GpuContextState"/>), error [15:8]
    /// (<see cref="GpuContextError"/>).</summary>
    public const ulong CtxStatus = 0x0C;

    /// <summary>CTX_ERROR_ADDRESS (64-bit RO, block offset 0x10): the device address behind the context's error.</summary>
    public const ulong CtxErrorAddress = 0x10;

    /// <summary>CTX_COMPLETED (64-bit RO, block offset 0x18): commands of this context finished (ok or failed).</summary>
    public const ulong CtxCompleted = 0x18;

    // ---- MSI-X -----------------------------------------------------------------------------------------------------

    /// <summary>MSI-X control register.</summary>
    public const ulong MsixControl = 0x3000;

    /// <summary>MSI-X vector control registers (4 bytes per vector).</summary>
    public const ulong MsixVectorTable = 0x3100;

    /// <summary>MSI-X pending bits.</summary>
    public const ulong MsixPba = 0x3200;

    // ---- values and fields -------------------------------------------------------------------------------------------

    /// <summary>ID value: version 1.0.</summary>
    public const uint IdValue = 0x4750_0100;

    /// <summary>The high half of ID every version carries.</summary>
    public const uint IdMagic = 0x4750;

    /// <summary>Contexts (address-space ids 0..15).</summary>
    public const int Contexts = 16;

    /// <summary>CONTROL.ENABLE.</summary>
    public const uint ControlEnable = 1u << 0;

    /// <summary>CONTROL.RESET.</summary>
    public const uint ControlReset = 1u << 1;

    /// <summary>STATUS.ENABLED.</summary>
    public const uint StatusEnabled = 1u << 0;

    /// <summary>STATUS.RESET_PENDING.</summary>
    public const uint StatusResetPending = 1u << 1;

    /// <summary>STATUS.BAD_REGISTER: a register write was refused (value out of range, or not allowed now).</summary>
    public const uint StatusBadRegister = 1u << 8;

    /// <summary>STATUS.COMMAND_ERROR: the command ring stopped (see CMD_STATUS and ERROR_CODE).</summary>
    public const uint StatusCommandError = 1u << 9;

    /// <summary>STATUS.BUS_ERROR: a BAR0 access hit no register or had a bad size or alignment.</summary>
    public const uint StatusBusError = 1u << 10;

    /// <summary>STATUS.COPY_ERROR: the copy engine reported an error (bad descriptor, fault, ring stop).</summary>
    public const uint StatusCopyError = 1u << 11;

    /// <summary>Every W1C error bit of STATUS.</summary>
    public const uint StatusErrors = StatusBadRegister | StatusCommandError | StatusBusError | StatusCopyError;

    /// <summary>INT_STATUS.FENCE: a command with <see cref="GpuCommandFlags.Interrupt"/> finished (vector 0).</summary>
    public const uint IntFence = 1u << 0;

    /// <summary>INT_STATUS.FAULT: the fault buffer received a record (vector 1).</summary>
    public const uint IntFault = 1u << 1;

    /// <summary>INT_STATUS.CONTEXT_ERROR: a context went to the error state (vector 0).</summary>
    public const uint IntContextError = 1u << 2;

    /// <summary>INT_STATUS.TLB_DONE: a TLB invalidation completed (vector 0).</summary>
    public const uint IntTlbDone = 1u << 3;

    /// <summary>INT_STATUS.COPY_DONE: the copy engine posted a completion that asked for an interrupt (vector 2).</summary>
    public const uint IntCopyDone = 1u << 4;

    /// <summary>INT_STATUS.ERROR: a device-level error (STATUS error bits, vector 3).</summary>
    public const uint IntError = 1u << 5;

    /// <summary>INT_STATUS.RESET_DONE: a reset finished (vector 0).</summary>
    public const uint IntResetDone = 1u << 6;

    /// <summary>Every INT_STATUS bit.</summary>
    public const uint IntAll = IntFence | IntFault | IntContextError | IntTlbDone | IntCopyDone | IntError | IntResetDone;

    /// <summary>TLBI_TRIGGER: invalidate [TLBI_ADDRESS, TLBI_ADDRESS + TLBI_SIZE) of TLBI_CONTEXT.</summary>
    public const uint TlbiRange = 1;

    /// <summary>TLBI_TRIGGER: invalidate every entry of TLBI_CONTEXT.</summary>
    public const uint TlbiContextAll = 2;

    /// <summary>TLBI_TRIGGER: invalidate every entry.</summary>
    public const uint TlbiAll = 3;

    /// <summary>TLBI_STATUS.DONE.</summary>
    public const uint TlbiStatusDone = 1u << 0;

    /// <summary>TLBI_STATUS.ERROR.</summary>
    public const uint TlbiStatusError = 1u << 1;

    /// <summary>CTX_CONTROL.VALID.</summary>
    public const uint CtxControlValid = 1u << 0;

    /// <summary>The vector of fences, context errors, TLB completions and reset-done.</summary>
    public const int VectorEvents = 0;

    /// <summary>The vector of the fault buffer.</summary>
    public const int VectorFault = 1;

    /// <summary>The vector of copy-engine completions.</summary>
    public const int VectorCopy = 2;

    /// <summary>The vector of device-level errors.</summary>
    public const int VectorError = 3;

    /// <summary>MSI-X vectors.</summary>
    public const int Vectors = 4;

    /// <summary>The vector an INT_STATUS cause is sent on.</summary>
    public static int VectorOf(uint cause) => cause switch
    {
        IntFault => VectorFault,
        IntCopyDone => VectorCopy,
        IntError => VectorError,
        _ => VectorEvents,
    };

    /// <summary>The first register of context <paramref name="context"/>'s block (0..15).</summary>
    public static ulong ContextBlock(int context) => ContextBase + (ContextStride * (ulong)context);

    /// <summary>The MSI-X vector control register of <paramref name="vector"/>.</summary>
    public static ulong MsixVectorControl(int vector) => MsixVectorTable + (4UL * (ulong)vector);
}
