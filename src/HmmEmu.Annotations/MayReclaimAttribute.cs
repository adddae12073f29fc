using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The method allocates memory and may enter direct reclaim: it may sleep, and reclaim may start mmu-notifier
/// invalidations. When <see cref="FlagsParameter"/> names an allocation-flags parameter, the call reclaims only if the
/// argument has a bit of <see cref="ReclaimFlags"/> set (or is not a constant); a <c>GFP_ATOMIC</c>/<c>GFP_NOWAIT</c>
/// call does not.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Constructor, Inherited = false)]
public sealed class MayReclaimAttribute : Attribute
{
    /// <summary>The name of the allocation-flags (gfp) parameter, or null if every call may reclaim.</summary>
    public string? FlagsParameter { get; set; }

    /// <summary>The flag bits that allow reclaim (<c>__GFP_DIRECT_RECLAIM</c>); used with <see cref="FlagsParameter"/>.</summary>
    public long ReclaimFlags { get; set; }
}
