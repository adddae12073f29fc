using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The caller must not hold a lock (Clang's <c>LOCKS_EXCLUDED</c>): the field or property of the method's type, or
/// the parameter, that <see cref="Lock"/> names; for example because the method takes it itself or waits for a
/// thread that does.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false, AllowMultiple = true)]
public sealed class ExcludesLockAttribute : Attribute
{
    /// <summary>Excludes the lock named <paramref name="lock"/>.</summary>
    public ExcludesLockAttribute(string @lock) => Lock = @lock;

    /// <summary>The field, property or parameter that must not be held.</summary>
    public string Lock { get; }
}
