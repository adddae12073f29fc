using System;

namespace HmmEmu.Annotations;

/// <summary>
/// Marks the lock field or property that a driver's invalidate callback holds around <c>SetSeq</c> and its commit path
/// holds around <c>ReadRetry</c> and the device-table update (the kernel's "driver->update" lock). With it, HMM003
/// requires this particular lock around <c>SetSeq</c>, and HMM006 reports at once (not only at compilation end) a fault
/// or wait made while holding it.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, Inherited = false)]
public sealed class NotifierUpdateLockAttribute : Attribute
{
}
