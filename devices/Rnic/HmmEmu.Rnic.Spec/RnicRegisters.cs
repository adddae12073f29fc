namespace HmmEmu.Rnic;

/// <summary>
/// BAR0 of the HmmEmu RDMA NIC: offsets and bit fields (the programming manual; <c>docs/rnic.md</c> holds the table).
/// All registers are little-endian; 64-bit registers take 8-byte accesses, 32-bit ones 4-byte accesses; anything else
/// reads all-ones, is dropped and counted in BUS_ERRORS. BAR0 belongs to the kernel driver; user contexts get only
/// their doorbell page in BAR2 (<see cref="RnicDoorbells"/>).
/// </summary>
/// <remarks>
/// <para>Queue configuration (CMDQ_BASE/RESP_BASE/SIZE, EQ_BASE/SIZE) is latched when CONTROL.ENABLE goes from 0 to 1;
/// writes to those registers while enabled are refused (the register keeps its value) with STATUS.BAD_REGISTER and the
/// error interrupt. Clearing ENABLE or writing CONTROL.RESET stops every engine, destroys every object (PD, MR, CQ, QP),
/// and raises RESET_DONE when the device is quiet again.</para>
/// <para>Ring indices (CMDQ_HEAD/TAIL, EQ_GET/PUT and the SQ/RQ/CQ indices of the doorbell pages) count modulo twice the
/// ring size: the bit above the entry index is the wrap bit, so equal indices mean empty and indices that differ only
/// in the wrap bit mean full.</para>
/// </remarks>
public static class RnicRegisters
{
    /// <summary>BAR0 size.</summary>
    public const ulong Bar0Size = 0x4000;

    /// <summary>PCI vendor id (the same made-up vendor as the GPU).</summary>
    public const ushort VendorId = 0x1E4D;

    /// <summary>PCI device id.</summary>
    public const ushort DeviceId = 0x6702;

    /// <summary>PCI class code: network controller, InfiniBand (0x0207).</summary>
    public const uint ClassCode = 0x02_07_00;

    // ---- identity and capabilities ------------------------------------------------------------------------------

    /// <summary>ID (RO): 0x524E ("RN") [31:16], major [15:8], minor [7:0].</summary>
    public const ulong Id = 0x000;

    /// <summary>CAPS (RO): ODP [0], ATOMIC [1], send SGEs per WQE [11:8], receive SGEs per WQE [15:12].</summary>
    public const ulong Caps = 0x004;

    /// <summary>ODP_CAPS (RO): the operations that may use on-demand-paging MRs (<see cref="RnicOdpCaps"/>).</summary>
    public const ulong OdpCaps = 0x008;

    /// <summary>CONTEXTS (RO): user contexts, one doorbell page each in BAR2.</summary>
    public const ulong Contexts = 0x00C;

    /// <summary>MAX_PD (RO): protection domains the device can hold.</summary>
    public const ulong MaxPd = 0x010;

    /// <summary>MAX_MR (RO): memory regions the device can hold (MR indices 1..MAX_MR).</summary>
    public const ulong MaxMr = 0x014;

    /// <summary>MAX_CQ (RO): completion queues the device can hold.</summary>
    public const ulong MaxCq = 0x018;

    /// <summary>MAX_QP (RO): queue pairs the device can hold.</summary>
    public const ulong MaxQp = 0x01C;

    /// <summary>MAX_QP_WR (RO): largest SQ or RQ, in entries (a power of two).</summary>
    public const ulong MaxQpWr = 0x020;

    /// <summary>MAX_CQE (RO): largest CQ, in entries (a power of two).</summary>
    public const ulong MaxCqe = 0x024;

    /// <summary>MAX_RD_ATOMIC (RO): outstanding RDMA READ/atomic requests per QP, as initiator [7:0] and as responder [15:8].</summary>
    public const ulong MaxRdAtomic = 0x028;

    /// <summary>MAX_MTT (RO): largest MTT of one MR, in entries (pages).</summary>
    public const ulong MaxMtt = 0x02C;

    /// <summary>PORT_STATE (RO): port state [3:0] (<see cref="RnicPortState"/>), active MTU [11:8] (<see cref="RnicMtu"/>).</summary>
    public const ulong PortState = 0x030;

    /// <summary>PORT_ADDRESS (RO): this port's address on the link; a peer puts it in its QP's AV.</summary>
    public const ulong PortAddress = 0x034;

    // ---- global control -----------------------------------------------------------------------------------------

    /// <summary>CONTROL: ENABLE [0] RW, RESET [1] WO (writing 1 resets every engine and object, keeps ENABLE).</summary>
    public const ulong Control = 0x040;

    /// <summary>STATUS: ENABLED [0] RO, RESET_PENDING [1] RO, error bits [12:8] W1C.</summary>
    public const ulong Status = 0x044;

    /// <summary>INT_STATUS (W1C): the causes below; a cause is latched even while masked.</summary>
    public const ulong IntStatus = 0x048;

    /// <summary>INT_MASK (RW): a set bit keeps its cause latched in INT_STATUS without sending its vector; clearing it
    /// sends the vector of a cause still latched.</summary>
    public const ulong IntMask = 0x04C;

    /// <summary>BUS_ERRORS (RO): bad BAR0/BAR2 accesses so far (unknown offsets, bad sizes, misalignment).</summary>
    public const ulong BusErrors = 0x050;

    /// <summary>DOORBELL_ERRORS (RO): doorbell writes dropped so far (unknown object, object of another context, bad index).</summary>
    public const ulong DoorbellErrors = 0x054;

    /// <summary>ERROR_CODE (RO): the last device-level error (<see cref="RnicDeviceError"/>).</summary>
    public const ulong ErrorCode = 0x058;

    /// <summary>ERROR_INFO (64-bit RO): detail of ERROR_CODE (a queue index, a register offset or a doorbell address).</summary>
    public const ulong ErrorInfo = 0x060;

    // ---- command queue (control verbs; one, owned by the kernel driver) --------------------------------------------

    /// <summary>CMDQ_BASE (64-bit RW, latched on enable): bus address of the command ring (<see cref="RnicCommand"/> entries).</summary>
    public const ulong CmdqBase = 0x080;

    /// <summary>CMDQ_RESP_BASE (64-bit RW, latched on enable): bus address of the completion array, one
    /// <see cref="RnicCommandCompletion"/> slot per command slot (the completion of command i goes to slot i mod size).</summary>
    public const ulong CmdqRespBase = 0x088;

    /// <summary>CMDQ_SIZE (RW, latched on enable): command ring entries, a power of two from 2 to 4096.</summary>
    public const ulong CmdqSize = 0x090;

    /// <summary>CMDQ_TAIL (doorbell): the driver's producer index; reads the device's view of it.</summary>
    public const ulong CmdqTail = 0x094;

    /// <summary>CMDQ_HEAD (RO): the device's consumer index: every command before it has finished and its completion is written.</summary>
    public const ulong CmdqHead = 0x098;

    /// <summary>CMDQ_STATUS (64-bit RO): queue state [1:0] (0 Disabled, 1 Running, 2 Stopped), error [15:8], error index [63:32].</summary>
    public const ulong CmdqStatus = 0x0A0;

    // ---- event queue (async events, page faults, completion events) ------------------------------------------------

    /// <summary>EQ_BASE (64-bit RW, latched on enable): bus address of the event queue (<see cref="RnicEqe"/> entries).</summary>
    public const ulong EqBase = 0x0C0;

    /// <summary>EQ_SIZE (RW, latched on enable): event-queue entries, a power of two from 2 to 4096.</summary>
    public const ulong EqSize = 0x0C8;

    /// <summary>EQ_GET (RW): the driver's consumer index: entries before it have been read.</summary>
    public const ulong EqGet = 0x0CC;

    /// <summary>EQ_PUT (RO): the device's producer index: entries before it are written.</summary>
    public const ulong EqPut = 0x0D0;

    /// <summary>EQ_OVERFLOWS (RO): events dropped because the queue was full (page faults and completion events are
    /// kept pending instead and written when room appears, so they are never counted here).</summary>
    public const ulong EqOverflows = 0x0D4;

    // ---- MSI-X ---------------------------------------------------------------------------------------------------

    /// <summary>MSI-X control register.</summary>
    public const ulong MsixControl = 0x3000;

    /// <summary>MSI-X vector control registers (4 bytes per vector).</summary>
    public const ulong MsixVectorTable = 0x3100;

    /// <summary>MSI-X pending bits.</summary>
    public const ulong MsixPba = 0x3200;

    // ---- values and fields ---------------------------------------------------------------------------------------

    /// <summary>ID value: version 1.0.</summary>
    public const uint IdValue = 0x524E_0100;

    /// <summary>The high half of ID every version carries.</summary>
    public const uint IdMagic = 0x524E;

    /// <summary>CAPS.ODP: on-demand-paging MRs are supported (see ODP_CAPS).</summary>
    public const uint CapsOdp = 1u << 0;

    /// <summary>CAPS.ATOMIC: ATOMIC_CMP_AND_SWP and ATOMIC_FETCH_AND_ADD are supported.</summary>
    public const uint CapsAtomic = 1u << 1;

    /// <summary>Shift of CAPS.SEND_SGES (4 bits).</summary>
    public const int CapsSendSgesShift = 8;

    /// <summary>Shift of CAPS.RECV_SGES (4 bits).</summary>
    public const int CapsRecvSgesShift = 12;

    /// <summary>Shift of PORT_STATE.MTU (4 bits).</summary>
    public const int PortStateMtuShift = 8;

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

    /// <summary>STATUS.COMMAND_ERROR: the command queue stopped (see CMDQ_STATUS and ERROR_CODE).</summary>
    public const uint StatusCommandError = 1u << 9;

    /// <summary>STATUS.BUS_ERROR: a BAR access hit no register or had a bad size or alignment.</summary>
    public const uint StatusBusError = 1u << 10;

    /// <summary>STATUS.DOORBELL_ERROR: a doorbell write was dropped (counted in DOORBELL_ERRORS).</summary>
    public const uint StatusDoorbellError = 1u << 11;

    /// <summary>STATUS.EVENT_OVERFLOW: an event was dropped because the event queue was full (counted in EQ_OVERFLOWS).</summary>
    public const uint StatusEventOverflow = 1u << 12;

    /// <summary>Every W1C error bit of STATUS.</summary>
    public const uint StatusErrors = StatusBadRegister | StatusCommandError | StatusBusError | StatusDoorbellError | StatusEventOverflow;

    /// <summary>INT_STATUS.COMMAND_DONE: a command flagged <see cref="RnicCommandFlags.Interrupt"/> finished (vector 0).</summary>
    public const uint IntCommandDone = 1u << 0;

    /// <summary>INT_STATUS.ASYNC_EVENT: an async event (QP, CQ, port or device) was written to the event queue (vector 1).</summary>
    public const uint IntAsyncEvent = 1u << 1;

    /// <summary>INT_STATUS.PAGE_FAULT: a page-fault event was written to the event queue (vector 1).</summary>
    public const uint IntPageFault = 1u << 2;

    /// <summary>INT_STATUS.COMPLETION: a completion event of an armed CQ was written to the event queue (vector 2).</summary>
    public const uint IntCompletion = 1u << 3;

    /// <summary>INT_STATUS.ERROR: a device-level error (STATUS error bits, vector 3).</summary>
    public const uint IntError = 1u << 4;

    /// <summary>INT_STATUS.RESET_DONE: a reset finished (vector 0).</summary>
    public const uint IntResetDone = 1u << 5;

    /// <summary>Every INT_STATUS bit.</summary>
    public const uint IntAll = IntCommandDone | IntAsyncEvent | IntPageFault | IntCompletion | IntError | IntResetDone;

    /// <summary>The vector of command completions and reset-done.</summary>
    public const int VectorCommand = 0;

    /// <summary>The vector of async events and page faults.</summary>
    public const int VectorAsync = 1;

    /// <summary>The vector of CQ completion events.</summary>
    public const int VectorCompletion = 2;

    /// <summary>The vector of device-level errors.</summary>
    public const int VectorError = 3;

    /// <summary>MSI-X vectors.</summary>
    public const int Vectors = 4;

    /// <summary>Smallest command-queue or event-queue size, in entries.</summary>
    public const uint MinQueueEntries = 2;

    /// <summary>Largest command-queue or event-queue size, in entries.</summary>
    public const uint MaxQueueEntries = 4096;

    /// <summary>The vector an INT_STATUS cause is sent on.</summary>
    public static int VectorOf(uint cause) => cause switch
    {
        IntAsyncEvent or IntPageFault => VectorAsync,
        IntCompletion => VectorCompletion,
        IntError => VectorError,
        _ => VectorCommand,
    };

    /// <summary>The MSI-X vector control register of <paramref name="vector"/>.</summary>
    public static ulong MsixVectorControl(int vector) => MsixVectorTable + (4UL * (ulong)vector);
}
