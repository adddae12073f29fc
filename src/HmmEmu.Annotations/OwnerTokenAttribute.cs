using System;

namespace HmmEmu.Annotations;

/// <summary>
/// Marks the field or property holding the driver's device-private page owner token (the <c>pgmap->owner</c> it passes
/// to migrations): an invalidate callback's owner-skip must compare <c>range.Owner</c> with it and nothing else (HMM012).
/// On a class, <c>this</c> inside it is the token (the device object that registered its pagemap with itself as owner);
/// on a parameter, the argument must be the token.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property | AttributeTargets.Class | AttributeTargets.Parameter, Inherited = false)]
public sealed class OwnerTokenAttribute : Attribute
{
}
