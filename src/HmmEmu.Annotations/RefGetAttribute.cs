using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The instance method takes a reference on its object (kref_get, refcount_inc, mmget_not_zero). A bool-returning one
/// takes it only when it returns true (kref_get_unless_zero). A type with such a method is reference-counted: deferred
/// work that captures one must hold a reference taken before it is queued and drop it itself (RDMA002).
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class RefGetAttribute : Attribute
{
}
