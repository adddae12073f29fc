namespace HmmEmu.Rnic;

/// <summary>
/// BAR2 of the HmmEmu RDMA NIC: one 4 KiB doorbell page per user context, which the kernel driver maps into the
/// process that owns the context (as pvrdma's UAR and mlx5's UAR pages). Every doorbell is a 64-bit write-only register
/// whose value names the object in the low bits and carries a ring index in the high 32 bits; reads return 0.
/// </summary>
/// <remarks>
/// A doorbell is dropped and counted in DOORBELL_ERRORS (STATUS.DOORBELL_ERROR, ERROR_CODE
/// <see cref="RnicDeviceError.BadDoorbell"/>, ERROR_INFO the BAR2 offset) when it names no object, names an object
/// created for another context, carries an index that is not a valid advance, or rings a QP in RESET. A dropped
/// doorbell never changes an object and never throws.
/// </remarks>
public static class RnicDoorbells
{
    /// <summary>Bytes per doorbell page.</summary>
    public const ulong PageSize = 0x1000;

    /// <summary>User contexts (doorbell pages) the device has; CONTEXTS reads this value.</summary>
    public const int Contexts = 64;

    /// <summary>BAR2 size.</summary>
    public const ulong Bar2Size = PageSize * Contexts;

    /// <summary>SQ_DB (page offset 0x000): QPN [23:0], new SQ producer index [63:32].</summary>
    public const ulong SqDoorbell = 0x000;

    /// <summary>RQ_DB (page offset 0x008): QPN [23:0], new RQ producer index [63:32].</summary>
    public const ulong RqDoorbell = 0x008;

    /// <summary>CQ_CI_DB (page offset 0x010): CQN [23:0], new CQ consumer index [63:32] (frees CQ slots for the device).</summary>
    public const ulong CqConsumerDoorbell = 0x010;

    /// <summary>CQ_ARM_DB (page offset 0x018): CQN [23:0], SOLICITED [24], the consumer index the arm is relative to [63:32].</summary>
    public const ulong CqArmDoorbell = 0x018;

    /// <summary>Mask of the object number (QPN or CQN) in a doorbell value.</summary>
    public const uint ObjectMask = 0xFF_FFFF;

    /// <summary>CQ_ARM_DB.SOLICITED: the arm fires only on a solicited completion or an error completion (req_notify_cq(SOLICITED)).</summary>
    public const uint ArmSolicited = 1u << 24;

    /// <summary>The BAR2 offset of <paramref name="context"/>'s doorbell page.</summary>
    public static ulong PageOf(int context)
    {
        if ((uint)context >= Contexts)
            throw new ArgumentOutOfRangeException(nameof(context), context, $"Doorbell pages are numbered 0 to {Contexts - 1}.");
        return PageSize * (ulong)context;
    }

    /// <summary>The value of an SQ, RQ or CQ-consumer doorbell for object <paramref name="objectNumber"/> and ring index <paramref name="index"/>.</summary>
    public static ulong Encode(uint objectNumber, uint index)
    {
        CheckObject(objectNumber);
        return ((ulong)index << 32) | objectNumber;
    }

    /// <summary>The value of a CQ arm doorbell: arm CQ <paramref name="cqn"/> for the next completion after
    /// <paramref name="consumerIndex"/> (solicited or error ones only when <paramref name="solicitedOnly"/>).</summary>
    public static ulong EncodeArm(uint cqn, uint consumerIndex, bool solicitedOnly)
    {
        CheckObject(cqn);
        return ((ulong)consumerIndex << 32) | (solicitedOnly ? ArmSolicited : 0) | cqn;
    }

    /// <summary>The object number (QPN or CQN) of a doorbell value.</summary>
    public static uint ObjectOf(ulong value) => (uint)value & ObjectMask;

    /// <summary>The ring index of a doorbell value.</summary>
    public static uint IndexOf(ulong value) => (uint)(value >> 32);

    /// <summary>Whether an arm doorbell value asks for solicited completions only.</summary>
    public static bool IsSolicitedArm(ulong value) => ((uint)value & ArmSolicited) != 0;

    /// <summary>Whether bits [31:25] of a doorbell value, which must be zero, are zero (the device drops it otherwise).</summary>
    public static bool ReservedIsZero(ulong value) => ((uint)value & 0xFE00_0000u) == 0;

    private static void CheckObject(uint objectNumber)
    {
        if (objectNumber > ObjectMask)
            throw new ArgumentOutOfRangeException(nameof(objectNumber), objectNumber, "QP and CQ numbers are 24-bit (0 to 0xFFFFFF).");
    }
}
