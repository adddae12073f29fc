using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The method sleeps until another thread or a device signals an event (<c>wait_for_completion</c>, <c>wait_event</c>,
/// flushing a work queue). Implies <see cref="MayBlockAttribute"/>. Outside an invalidate callback it must not be called
/// while holding a lock that an invalidate callback takes (HMM006): the invalidation would wait for the waiter.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Constructor, Inherited = false)]
public sealed class BlockingWaitAttribute : Attribute
{
}
