using System;

namespace HmmEmu.Annotations;

/// <summary>The method drops DMA mappings of pages: must come after the device's TLB flush, or the device may still DMA through them (HMM007).</summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class DmaUnmapAttribute : Attribute
{
}
