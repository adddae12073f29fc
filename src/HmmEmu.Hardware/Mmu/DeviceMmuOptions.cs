namespace HmmEmu.Hardware.Mmu;

/// <summary>The shape and costs of one engine's <see cref="DeviceMmu"/>.</summary>
public sealed record DeviceMmuOptions
{
    /// <summary>
    /// The defaults: a 64 × 4 TLB (256 entries), an 8-entry page-walk cache, 64 in-flight uses, 5 ns per page-walk read.
    /// </summary>
    public static DeviceMmuOptions Default { get; } = new();

    /// <summary>Name for wait reasons, traces and error messages (e.g. "gpu0.ce").</summary>
    public string Name { get; init; } = "mmu";

    /// <summary>TLB sets (a power of two).</summary>
    public int TlbSets { get; init; } = 64;

    /// <summary>TLB ways per set.</summary>
    public int TlbWays { get; init; } = 4;

    /// <summary>
    /// Level-1 tables the page-walk cache keeps (0 to 64; 0 turns it off), one per recently walked (asid, 2 MiB region):
    /// a TLB miss in such a region reads one entry instead of four.
    /// </summary>
    public int WalkCacheEntries { get; init; } = DeviceTlb.DefaultWalkCacheEntries;

    /// <summary>
    /// In-flight translation uses the engine can hold at once. <see cref="DeviceMmu.BeginUse"/> waits for a slot when
    /// all are taken, as hardware stalls a new request until an old one retires.
    /// </summary>
    public int UseSlots { get; init; } = 64;

    /// <summary>Virtual ns charged per page-table entry read on a TLB miss.</summary>
    public ulong WalkLevelNs { get; init; } = PageTableWalker.DefaultLevelNs;
}
