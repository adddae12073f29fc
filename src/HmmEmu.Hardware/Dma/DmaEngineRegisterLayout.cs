namespace HmmEmu.Hardware.Dma;

/// <summary>
/// Where a <see cref="DmaEngineRegisters"/> block goes in a register file and what its registers are called and say.
/// The block's shape is fixed (see the offset constants of <see cref="DmaEngineRegisters"/>); the descriptions have
/// defaults a device may reword.
/// </summary>
public sealed record DmaEngineRegisterLayout
{
    /// <summary>Byte offset of SQ_BASE, the block's first register; a multiple of 8.</summary>
    public required ulong Offset { get; init; }

    /// <summary>Put before every register name: "CE_" gives CE_SQ_BASE … CE_CQ_STATUS.</summary>
    public string Prefix { get; init; } = "";

    /// <summary>
    /// Whether a ring whose latched base and size are both 0 is left alone on enable (the device does not use it)
    /// rather than configured, which refuses it as a bad size and raises the engine's error.
    /// </summary>
    public bool RingUnusedWhenZero { get; init; }

    /// <summary>SQ_BASE's description.</summary>
    public string SqBaseDescription { get; init; } = "Submission ring bus address; latched when ENABLE is set, refused while enabled.";

    /// <summary>SQ_SIZE's description.</summary>
    public string SqSizeDescription { get; init; } = "Submission ring entries (a power of two); latched when ENABLE is set.";

    /// <summary>SQ_TAIL's description.</summary>
    public string SqTailDescription { get; init; } = "Submission doorbell: write the new producer index; reads the device's producer.";

    /// <summary>SQ_HEAD's description.</summary>
    public string SqHeadDescription { get; init; } = "The device's submission consumer index.";

    /// <summary>SQ_STATUS's description.</summary>
    public string SqStatusDescription { get; init; } = "Submission ring state [1:0], error [15:8], error index [63:32].";

    /// <summary>CQ_BASE's description.</summary>
    public string CqBaseDescription { get; init; } = "Completion ring bus address; latched when ENABLE is set, refused while enabled.";

    /// <summary>CQ_SIZE's description.</summary>
    public string CqSizeDescription { get; init; } = "Completion ring entries (a power of two); latched when ENABLE is set.";

    /// <summary>CQ_HEAD's description.</summary>
    public string CqHeadDescription { get; init; } = "Completion consumer doorbell: write the index after the last record read.";

    /// <summary>CQ_TAIL's description.</summary>
    public string CqTailDescription { get; init; } = "The device's completion producer index: records before it are written.";

    /// <summary>CQ_STATUS's description.</summary>
    public string CqStatusDescription { get; init; } = "Completion ring state [1:0], error [15:8], error index [63:32].";
}
