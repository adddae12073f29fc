using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The method releases a lock the caller holds (sparse's <c>__releases</c>): the receiver when <see cref="Lock"/> is
/// null, otherwise the parameter or the field or property of the receiver's type that <see cref="Lock"/> names.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class ReleasesLockAttribute : Attribute
{
    /// <summary>Releases the receiver.</summary>
    public ReleasesLockAttribute()
    {
    }

    /// <summary>Releases the parameter, field or property named <paramref name="lock"/>.</summary>
    public ReleasesLockAttribute(string @lock) => Lock = @lock;

    /// <summary>The parameter, field or property released; null for the receiver.</summary>
    public string? Lock { get; }
}
