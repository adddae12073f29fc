using HmmEmu.Hardware.Registers;

namespace HmmEmu.Hardware.Dma;

/// <summary>
/// The driver's view of a <see cref="DmaEngine"/>: its two rings as a 0x40-byte block of registers in a device's
/// register file. Ring bases and sizes are <see cref="LatchedRegister"/>s (taken in by <see cref="ConfigureEngine"/>
/// when the device is enabled, refused while it is); SQ_TAIL is the submission doorbell (refused while disabled);
/// CQ_HEAD is the completion consumer doorbell; the indices and ring states are read from the engine.
/// </summary>
/// <remarks>
/// Layout, from <see cref="DmaEngineRegisterLayout.Offset"/>: SQ_BASE (64) +0x00, SQ_SIZE +0x08, SQ_TAIL +0x0C,
/// SQ_HEAD +0x10, SQ_STATUS (64) +0x18, CQ_BASE (64) +0x20, CQ_SIZE +0x28, CQ_HEAD +0x2C, CQ_TAIL +0x30,
/// CQ_STATUS (64) +0x38. A ring status packs state [1:0], error [15:8] and error index [63:32]. Register handlers
/// run on the driver's thread and never sleep.
/// </remarks>
public sealed class DmaEngineRegisters
{
    /// <summary>SQ_BASE's offset in the block (64-bit).</summary>
    public const ulong SqBaseOffset = 0x00;

    /// <summary>SQ_SIZE's offset in the block.</summary>
    public const ulong SqSizeOffset = 0x08;

    /// <summary>SQ_TAIL's offset in the block.</summary>
    public const ulong SqTailOffset = 0x0C;

    /// <summary>SQ_HEAD's offset in the block.</summary>
    public const ulong SqHeadOffset = 0x10;

    /// <summary>SQ_STATUS's offset in the block (64-bit).</summary>
    public const ulong SqStatusOffset = 0x18;

    /// <summary>CQ_BASE's offset in the block (64-bit).</summary>
    public const ulong CqBaseOffset = 0x20;

    /// <summary>CQ_SIZE's offset in the block.</summary>
    public const ulong CqSizeOffset = 0x28;

    /// <summary>CQ_HEAD's offset in the block.</summary>
    public const ulong CqHeadOffset = 0x2C;

    /// <summary>CQ_TAIL's offset in the block.</summary>
    public const ulong CqTailOffset = 0x30;

    /// <summary>CQ_STATUS's offset in the block (64-bit).</summary>
    public const ulong CqStatusOffset = 0x38;

    /// <summary>Bytes the block spans.</summary>
    public const ulong Size = 0x40;

    private readonly DmaEngine _engine;
    private readonly Func<bool> _isEnabled;
    private readonly Action<Register, ulong> _onRefused;
    private readonly bool _ringUnusedWhenZero;

    /// <summary>
    /// Declares the block in <paramref name="file"/> as <paramref name="layout"/> says. <paramref name="isEnabled"/>
    /// is the device's enable state; <paramref name="onRefused"/> reports a refused write (a ring register written
    /// while enabled, SQ_TAIL rung while disabled) with the register and the value written.
    /// </summary>
    public DmaEngineRegisters(RegisterFile file, DmaEngine engine, DmaEngineRegisterLayout layout,
        Func<bool> isEnabled, Action<Register, ulong> onRefused)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(isEnabled);
        ArgumentNullException.ThrowIfNull(onRefused);
        _engine = engine;
        _isEnabled = isEnabled;
        _onRefused = onRefused;
        _ringUnusedWhenZero = layout.RingUnusedWhenZero;
        ulong at = layout.Offset;
        string p = layout.Prefix;

        SubmissionBase = LatchedRegister.Define64(file, at + SqBaseOffset, p + "SQ_BASE", layout.SqBaseDescription, isEnabled, onRefused);
        SubmissionSize = LatchedRegister.Define32(file, at + SqSizeOffset, p + "SQ_SIZE", layout.SqSizeDescription, isEnabled, onRefused);
        SubmissionTail = file.Define32(at + SqTailOffset, p + "SQ_TAIL", layout.SqTailDescription,
            readWrite: ~0u, onWrite: OnSubmissionDoorbell, onRead: _ => engine.Submission.Producer);
        file.Define32(at + SqHeadOffset, p + "SQ_HEAD", layout.SqHeadDescription, onRead: _ => engine.Submission.Consumer);
        file.Define64(at + SqStatusOffset, p + "SQ_STATUS", layout.SqStatusDescription, onRead: _ => engine.Submission.Status.Pack());

        CompletionBase = LatchedRegister.Define64(file, at + CqBaseOffset, p + "CQ_BASE", layout.CqBaseDescription, isEnabled, onRefused);
        CompletionSize = LatchedRegister.Define32(file, at + CqSizeOffset, p + "CQ_SIZE", layout.CqSizeDescription, isEnabled, onRefused);
        file.Define32(at + CqHeadOffset, p + "CQ_HEAD", layout.CqHeadDescription,
            readWrite: ~0u, onWrite: (_, v) => engine.CompletionConsumed((uint)v), onRead: _ => engine.Completion.Consumer);
        file.Define32(at + CqTailOffset, p + "CQ_TAIL", layout.CqTailDescription, onRead: _ => engine.Completion.Producer);
        file.Define64(at + CqStatusOffset, p + "CQ_STATUS", layout.CqStatusDescription, onRead: _ => engine.Completion.Status.Pack());
    }

    /// <summary>SQ_BASE: the submission ring's bus address.</summary>
    public LatchedRegister SubmissionBase { get; }

    /// <summary>SQ_SIZE: the submission ring's entry count.</summary>
    public LatchedRegister SubmissionSize { get; }

    /// <summary>SQ_TAIL: the submission doorbell.</summary>
    public Register SubmissionTail { get; }

    /// <summary>CQ_BASE: the completion ring's bus address.</summary>
    public LatchedRegister CompletionBase { get; }

    /// <summary>CQ_SIZE: the completion ring's entry count.</summary>
    public LatchedRegister CompletionSize { get; }

    /// <summary>
    /// Programs the engine's rings with the latched bases and sizes, both starting at index 0: call when the device's
    /// enable goes 0→1. Bad values stop the ring and raise the engine's error interrupt (the engine reports them).
    /// Never sleeps.
    /// </summary>
    public void ConfigureEngine()
    {
        ulong sqBase = SubmissionBase.Value, sqSize = SubmissionSize.Value;
        if (!_ringUnusedWhenZero || sqBase != 0 || sqSize != 0)
            _engine.ConfigureSubmissionRing(sqBase, (uint)sqSize);
        ulong cqBase = CompletionBase.Value, cqSize = CompletionSize.Value;
        if (!_ringUnusedWhenZero || cqBase != 0 || cqSize != 0)
            _engine.ConfigureCompletionRing(cqBase, (uint)cqSize);
    }

    private void OnSubmissionDoorbell(ulong written, ulong value)
    {
        if (!_isEnabled())
        {
            _onRefused(SubmissionTail, value);
            return;
        }
        _engine.Doorbell((uint)value);
    }
}
