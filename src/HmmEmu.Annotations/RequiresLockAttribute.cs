using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The caller must hold a lock (<c>__must_hold</c>, <c>lockdep_assert_held</c>): the field or property of the method's
/// type, or the parameter, that <see cref="Lock"/> names. Documents the contract stated in the method's
/// "Caller holds ..." comment so that the analyzers can check callers.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Property, Inherited = false, AllowMultiple = true)]
public sealed class RequiresLockAttribute : Attribute
{
    /// <summary>Requires the lock named <paramref name="lock"/>.</summary>
    public RequiresLockAttribute(string @lock) => Lock = @lock;

    /// <summary>The field, property or parameter that must be held.</summary>
    public string Lock { get; }
}
