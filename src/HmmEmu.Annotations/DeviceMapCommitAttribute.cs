using System;

namespace HmmEmu.Annotations;

/// <summary>The method writes the device's page table (or MTT) from a fault result: must run under the notifier update lock after a successful ReadRetry (HMM002).</summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class DeviceMapCommitAttribute : Attribute
{
}
