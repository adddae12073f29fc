using System;

namespace HmmEmu.Annotations;

/// <summary>The method removes device mappings of a range (zaps device PTEs): in an invalidate callback it must be followed by a TLB flush and its wait before the callback returns (HMM007).</summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class DeviceZapAttribute : Attribute
{
}
