namespace HmmEmu.Rnic;

/// <summary>Command opcodes (byte 0x00 of a <see cref="RnicCommand"/>); the argument table is in <c>docs/rnic.md</c> §3.</summary>
public enum RnicCommandOpcode : byte
{
    /// <summary>Does nothing but complete, in order with the commands before it.</summary>
    Nop = 0,

    /// <summary>Allocates a protection domain (arg0 context); the completion's object is the PD number.</summary>
    AllocPd = 1,

    /// <summary>Frees a protection domain (arg0 PD); <see cref="RnicCommandStatus.Busy"/> while an MR or QP uses it.</summary>
    DeallocPd = 2,

    /// <summary>Registers a pinned MR (arg0 PD, arg1 iova, arg2 length, arg3 access, arg4 MTT bus address, arg5 MTT
    /// entries); every MTT entry must already be valid; the completion's key is the new lkey/rkey.</summary>
    RegMr = 3,

    /// <summary>Registers an on-demand-paging MR (arguments as <see cref="RegMr"/>, access must include OnDemand);
    /// the device writes every MTT entry invalid before it completes.</summary>
    RegMrOdp = 4,

    /// <summary>Deregisters an MR (arg0 key); completes after the key stops resolving and DMA that used it has drained.</summary>
    DeregMr = 5,

    /// <summary>Creates a CQ (arg0 context, arg1 ring bus address, arg2 entries); the completion's object is the CQN.</summary>
    CreateCq = 6,

    /// <summary>Destroys a CQ (arg0 CQN); <see cref="RnicCommandStatus.Busy"/> while a QP uses it.</summary>
    DestroyCq = 7,

    /// <summary>Creates an RC QP in RESET (arg0 PD, arg1 context, arg2 send CQN, arg3 receive CQN, arg4 SQ bus address,
    /// arg5 RQ bus address, arg6 SQ entries [31:0] and RQ entries [63:32]); the completion's object is the QPN.</summary>
    CreateQp = 8,

    /// <summary>Modifies a QP (arg0 QPN, arg1 <see cref="RnicQpAttrMask"/>, arg2 bus address of an
    /// <see cref="RnicQpAttributes"/> block); checked against <see cref="RnicQpStateMachine"/>.</summary>
    ModifyQp = 9,

    /// <summary>Destroys a QP (arg0 QPN); completes after its engines stopped and its DMA drained; nothing is flushed.</summary>
    DestroyQp = 10,

    /// <summary>Zaps MTT entries of an ODP MR (arg0 key, arg1 first entry, arg2 count): writes them invalid, drops them
    /// from the translation cache, and completes only after every in-flight DMA that used them has ended.</summary>
    InvalidateMtt = 11,

    /// <summary>Resumes a QP paused on a page fault (arg0 QPN, arg1 <see cref="RnicFaultSide"/>, arg2 bit 0 ERROR).</summary>
    Resume = 12,

    /// <summary>Writes a QP's attributes to memory (arg0 QPN, arg1 bus address of an <see cref="RnicQpAttributes"/> block).</summary>
    QueryQp = 13,

    /// <summary>Reports a CQ's state in the completion (arg0 CQN).</summary>
    QueryCq = 14,

    /// <summary>Reports an MR's registration in the completion (arg0 key).</summary>
    QueryMr = 15,

    /// <summary>Reports the port's state in the completion.</summary>
    QueryPort = 16,
}
