using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The method may sleep (the kernel's <c>might_sleep()</c>): it may wait for a lock, an event or memory. It must not be
/// called in atomic context or from a non-blockable invalidate callback (HMM001).
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Constructor | AttributeTargets.Property, Inherited = false)]
public sealed class MayBlockAttribute : Attribute
{
}
