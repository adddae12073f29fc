using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The method returns holding a lock (sparse's <c>__acquires</c>): the receiver itself when <see cref="Lock"/> is null,
/// otherwise the parameter or the field or property of the receiver's type that <see cref="Lock"/> names. A method
/// that returns an <see cref="IDisposable"/> scope holds the lock until the scope is disposed.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class AcquiresLockAttribute : Attribute
{
    /// <summary>Acquires the receiver.</summary>
    public AcquiresLockAttribute()
    {
    }

    /// <summary>Acquires the parameter, field or property named <paramref name="lock"/>.</summary>
    public AcquiresLockAttribute(string @lock) => Lock = @lock;

    /// <summary>The parameter, field or property acquired; null for the receiver.</summary>
    public string? Lock { get; }
}
