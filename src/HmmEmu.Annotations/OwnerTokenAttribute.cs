using System;

namespace HmmEmu.Annotations;

/// <summary>
/// Marks the field or property holding the driver's device-private page owner token (the <c>pgmap->owner</c> it passes
/// to migrations): an invalidate callback's owner-skip must compare <c>range.Owner</c> with it and nothing else (HMM012).
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, Inherited = false)]
public sealed class OwnerTokenAttribute : Attribute
{
}
