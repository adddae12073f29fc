using System;

namespace HmmEmu.Annotations;

/// <summary>
/// Marks a method as an mmu-interval-notifier invalidate callback (the <c>ops->invalidate</c> of the kernel), so the
/// analyzers apply the callback rules to it: no sleeping when the range is not blockable (HMM001), <c>SetSeq</c> under
/// the update lock on every path that returns true (HMM003). Implementations of
/// <c>IMmuIntervalNotifierOps.Invalidate</c> are recognised without it.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class InvalidateCallbackAttribute : Attribute
{
}
