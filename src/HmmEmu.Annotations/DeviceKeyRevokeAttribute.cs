using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The method makes the device stop using a memory key (DEREG_MR, destroy or invalidate an mkey) and, unless
/// <see cref="Waits"/> is false, returns only once the device has answered: the key no longer resolves and the DMA that
/// translated through it has drained. In a teardown method, notifier removal, DMA unmapping, page release, freeing of
/// device-visible memory and <c>[KeyRelease]</c> must come after it on every path (RDMA001).
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class DeviceKeyRevokeAttribute : Attribute
{
    /// <summary>
    /// Whether the call waits for the device's answer (the default). False for a call that only posts the command: a
    /// blocking wait (<c>[BlockingWait]</c>, such as <c>Completion.Wait</c>) after it completes the revoke.
    /// </summary>
    public bool Waits { get; set; } = true;
}
