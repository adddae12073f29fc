using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The method never sleeps: it is safe in atomic context and in a non-blockable invalidate callback. States the
/// contract for readers and for the analyzers; a method without any blocking attribute is also treated as non-blocking.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Constructor | AttributeTargets.Property, Inherited = false)]
public sealed class NonBlockingAttribute : Attribute
{
}
