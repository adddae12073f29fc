namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>
/// The programming manual of the edu test device (the "Spec"): BAR0 offsets and bit fields. The model
/// (<see cref="EduDevice"/>) declares its registers from these constants and the driver (<see cref="EduDriver"/>)
/// programs the device only through them.
/// </summary>
/// <remarks>
/// Ring configuration (SQ_BASE, SQ_SIZE, CQ_BASE, CQ_SIZE) is latched when CONTROL.ENABLE goes from 0 to 1, as an
/// NVMe controller latches its admin queues: a write to those registers while the device is enabled is refused (the
/// register keeps its value) and reported with STATUS.BAD_REGISTER and the error interrupt. Clearing ENABLE resets
/// the DMA engine (every pending descriptor completes as aborted). Re-enabling starts both rings at index 0.
/// Address-space id 0 is bypass: descriptor addresses are bus addresses. Ids 1..7 translate through the device MMU
/// from PT_BASE{id}.
/// </remarks>
internal static class EduRegisters
{
    /// <summary>BAR0 size.</summary>
    public const ulong Bar0Size = 0x1000;

    /// <summary>ID (RO): bits 31:24 major, 23:16 minor, 15:0 0x00ED.</summary>
    public const ulong Id = 0x000;

    /// <summary>LIVENESS (RW): reads back the bitwise NOT of the last value written.</summary>
    public const ulong Liveness = 0x004;

    /// <summary>CONTROL: ENABLE [0] RW, RESET [1] WO (writing 1 resets the DMA engine and flushes the TLB).</summary>
    public const ulong Control = 0x008;

    /// <summary>STATUS: ENABLED [0] RO, RESET_PENDING [1] RO, error bits [10:8] W1C.</summary>
    public const ulong Status = 0x00C;

    /// <summary>INT_STATUS (W1C): DMA_DONE [0], ERROR [1], RESET_DONE [2].</summary>
    public const ulong IntStatus = 0x010;

    /// <summary>INT_MASK (RW): a set bit keeps the cause latched in INT_STATUS without sending its vector.</summary>
    public const ulong IntMask = 0x014;

    /// <summary>BUS_ERRORS (RO): bad BAR0 accesses so far (unknown offsets, bad sizes, misalignment).</summary>
    public const ulong BusErrors = 0x018;

    /// <summary>SQ_BASE (64-bit RW, latched on enable): bus address of the submission ring.</summary>
    public const ulong SqBase = 0x020;

    /// <summary>SQ_SIZE (RW, latched on enable): submission ring entries, a power of two.</summary>
    public const ulong SqSize = 0x028;

    /// <summary>SQ_TAIL (doorbell): the driver's producer index (with wrap bit); reads the device's producer.</summary>
    public const ulong SqTail = 0x02C;

    /// <summary>SQ_HEAD (RO): the device's consumer index.</summary>
    public const ulong SqHead = 0x030;

    /// <summary>SQ_STATUS (64-bit RO): ring state [1:0], error [15:8], error index [63:32].</summary>
    public const ulong SqStatus = 0x038;

    /// <summary>CQ_BASE (64-bit RW, latched on enable): bus address of the completion ring.</summary>
    public const ulong CqBase = 0x040;

    /// <summary>CQ_SIZE (RW, latched on enable): completion ring entries, a power of two.</summary>
    public const ulong CqSize = 0x048;

    /// <summary>CQ_HEAD (doorbell): the driver's consumer index; reads the device's view of it.</summary>
    public const ulong CqHead = 0x04C;

    /// <summary>CQ_TAIL (RO): the device's producer index: records below it are written.</summary>
    public const ulong CqTail = 0x050;

    /// <summary>CQ_STATUS (64-bit RO): as SQ_STATUS.</summary>
    public const ulong CqStatus = 0x058;

    /// <summary>DMA_FINISHED (64-bit RO): descriptors finished (completed, failed, skipped or aborted).</summary>
    public const ulong DmaFinished = 0x060;

    /// <summary>DMA_DROPPED (64-bit RO): completion records the device could not post.</summary>
    public const ulong DmaDropped = 0x068;

    /// <summary>PT_BASE1..7 (64-bit RW): the root page-table entry of address-space id n, at PtBase + 8·n.</summary>
    public const ulong PtBase = 0x100;

    /// <summary>TLB_ASID (RW): address-space id of the next invalidation.</summary>
    public const ulong TlbAsid = 0x180;

    /// <summary>TLB_ADDR (64-bit RW): first device address of a range invalidation.</summary>
    public const ulong TlbAddr = 0x188;

    /// <summary>TLB_SIZE (64-bit RW): bytes of a range invalidation (non-zero).</summary>
    public const ulong TlbSize = 0x190;

    /// <summary>TLB_CMD (WO doorbell): 1 range, 2 address space, 3 everything.</summary>
    public const ulong TlbCmd = 0x198;

    /// <summary>TLB_STATUS (RO): DONE [0] once every issued invalidation has drained, ERROR [1] if the last command was rejected.</summary>
    public const ulong TlbStatus = 0x19C;

    /// <summary>MSI-X control register.</summary>
    public const ulong MsixControl = 0x200;

    /// <summary>MSI-X vector control registers (4 bytes per vector).</summary>
    public const ulong MsixVectorTable = 0x300;

    /// <summary>MSI-X pending bits.</summary>
    public const ulong MsixPba = 0x380;

    /// <summary>ID value: version 1.0 of the edu device.</summary>
    public const uint IdValue = 0x0100_00ED;

    /// <summary>The low half of ID every version carries.</summary>
    public const uint IdMagic = 0x00ED;

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

    /// <summary>STATUS.ENGINE_ERROR: the DMA engine reported an error (bad descriptor, fault, ring stop).</summary>
    public const uint StatusEngineError = 1u << 9;

    /// <summary>STATUS.BUS_ERROR: a BAR0 access hit no register or had a bad size or alignment.</summary>
    public const uint StatusBusError = 1u << 10;

    /// <summary>Every W1C error bit of STATUS.</summary>
    public const uint StatusErrors = StatusBadRegister | StatusEngineError | StatusBusError;

    /// <summary>INT_STATUS.DMA_DONE (vector 0).</summary>
    public const uint IntDmaDone = 1u << 0;

    /// <summary>INT_STATUS.ERROR (vector 1).</summary>
    public const uint IntError = 1u << 1;

    /// <summary>INT_STATUS.RESET_DONE (vector 0).</summary>
    public const uint IntResetDone = 1u << 2;

    /// <summary>Every INT_STATUS bit.</summary>
    public const uint IntAll = IntDmaDone | IntError | IntResetDone;

    /// <summary>TLB_CMD: invalidate [TLB_ADDR, TLB_ADDR + TLB_SIZE) of TLB_ASID.</summary>
    public const uint TlbCmdRange = 1;

    /// <summary>TLB_CMD: invalidate every entry of TLB_ASID.</summary>
    public const uint TlbCmdAsid = 2;

    /// <summary>TLB_CMD: invalidate every entry.</summary>
    public const uint TlbCmdAll = 3;

    /// <summary>TLB_STATUS.DONE.</summary>
    public const uint TlbStatusDone = 1u << 0;

    /// <summary>TLB_STATUS.ERROR.</summary>
    public const uint TlbStatusError = 1u << 1;

    /// <summary>Address-space ids (0 is bypass; 1..7 have a PT_BASE register).</summary>
    public const int Contexts = 8;

    /// <summary>The vector of DMA completions and reset-done.</summary>
    public const int VectorDma = 0;

    /// <summary>The vector of errors.</summary>
    public const int VectorError = 1;

    /// <summary>MSI-X vectors.</summary>
    public const int Vectors = 2;

    /// <summary>The PT_BASE register of <paramref name="asid"/> (1..7).</summary>
    public static ulong PtBaseOf(int asid) => PtBase + (8UL * (ulong)asid);

    /// <summary>The MSI-X vector control register of <paramref name="vector"/>.</summary>
    public static ulong MsixVectorControl(int vector) => MsixVectorTable + (4UL * (ulong)vector);
}
