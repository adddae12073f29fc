using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The method returns true holding a lock and false without it (<c>mutex_trylock</c>, a driver's
/// "trylock if not blockable, else lock" helper). The lock is the receiver when <see cref="Lock"/> is null, otherwise
/// the parameter or the field or property of the receiver's type that <see cref="Lock"/> names.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class AcquiresOnSuccessAttribute : Attribute
{
    /// <summary>Conditionally acquires the receiver.</summary>
    public AcquiresOnSuccessAttribute()
    {
    }

    /// <summary>Conditionally acquires the parameter, field or property named <paramref name="lock"/>.</summary>
    public AcquiresOnSuccessAttribute(string @lock) => Lock = @lock;

    /// <summary>The parameter, field or property acquired; null for the receiver.</summary>
    public string? Lock { get; }
}
