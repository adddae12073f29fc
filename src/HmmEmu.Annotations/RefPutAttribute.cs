using System;

namespace HmmEmu.Annotations;

/// <summary>The instance method drops a reference on its object (kref_put, refcount_dec, mmput) taken by a <c>[RefGet]</c> method (RDMA002).</summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class RefPutAttribute : Attribute
{
}
