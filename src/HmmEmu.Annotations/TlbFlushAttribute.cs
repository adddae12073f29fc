using System;

namespace HmmEmu.Annotations;

/// <summary>The method invalidates the device's TLB for a range and waits for it: the device no longer uses the zapped translations once it returns (HMM007).</summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class TlbFlushAttribute : Attribute
{
}
