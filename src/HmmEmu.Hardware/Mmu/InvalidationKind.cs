namespace HmmEmu.Hardware.Mmu;

/// <summary>The scope of a TLB invalidation.</summary>
public enum InvalidationKind : byte
{
    /// <summary>The pages of one address-space id in a range (a page invalidation is a one-page range).</summary>
    Range = 0,

    /// <summary>Every entry of one address-space id.</summary>
    Asid = 1,

    /// <summary>Every entry.</summary>
    All = 2,
}
