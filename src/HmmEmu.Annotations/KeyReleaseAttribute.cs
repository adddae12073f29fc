using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The method returns a memory key (an lkey, rkey or mkey, or its table index) to the driver's free pool, where another
/// registration may get it: it must come after the device stopped using the key (<c>[DeviceKeyRevoke]</c>) on every
/// path of a teardown method (RDMA001).
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class KeyReleaseAttribute : Attribute
{
}
