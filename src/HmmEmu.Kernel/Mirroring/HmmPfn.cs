namespace HmmEmu.Kernel.Mirroring;

/// <summary>
/// The bits of an <see cref="HmmRange.HmmPfns"/> entry (HMM_PFN_*): on input, what to fault; on output, the page
/// frame number in the low bits with flags and a mapping order in the high bits.
/// </summary>
public static class HmmPfn
{
    /// <summary>HMM_PFN_VALID: the pfn is valid and at least readable by the device.</summary>
    public const ulong Valid = 1UL << 63;

    /// <summary>HMM_PFN_WRITE: the device may write (only with <see cref="Valid"/>).</summary>
    public const ulong Write = 1UL << 62;

    /// <summary>HMM_PFN_ERROR: no VMA, an unmirrorable mapping (I/O, raw pfn), or PROT_NONE.</summary>
    public const ulong Error = 1UL << 61;

    /// <summary>HMM_PFN_DMA_MAPPED: driver-owned, preserved across <see cref="Hmm.RangeFault"/>.</summary>
    public const ulong DmaMapped = 1UL << 60;

    /// <summary>HMM_PFN_P2PDMA: driver-owned, preserved.</summary>
    public const ulong P2pDma = 1UL << 59;

    /// <summary>HMM_PFN_P2PDMA_BUS: driver-owned, preserved.</summary>
    public const ulong P2pDmaBus = 1UL << 58;

    /// <summary>HMM_PFN_ORDER_SHIFT: where the 5-bit mapping order lives.</summary>
    public const int OrderShift = 53;

    /// <summary>HMM_PFN_REQ_FAULT (input): fault the page in if it is not present.</summary>
    public const ulong ReqFault = Valid;

    /// <summary>HMM_PFN_REQ_WRITE (input): fault it in writable.</summary>
    public const ulong ReqWrite = Write;

    /// <summary>HMM_PFN_FLAGS: every flag bit; the rest is the pfn.</summary>
    public const ulong FlagsMask = ~((1UL << OrderShift) - 1);

    /// <summary>The driver-owned bits that output entries keep (HMM_PFN_INOUT_FLAGS).</summary>
    public const ulong InOutFlags = DmaMapped | P2pDma | P2pDmaBus;

    /// <summary>hmm_pfn_to_page's pfn part.</summary>
    public static ulong ToPfn(ulong entry) => entry & ~FlagsMask;

    /// <summary>hmm_pfn_to_map_order: log2 of how many pages the CPU maps with one entry here.</summary>
    public static int MapOrder(ulong entry) => (int)((entry >> OrderShift) & 0x1F);
}
