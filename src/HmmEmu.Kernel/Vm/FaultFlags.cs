namespace HmmEmu.Kernel.Vm;

/// <summary>Why a fault is handled (FAULT_FLAG_*).</summary>
[Flags]
public enum FaultFlags
{
    /// <summary>A read fault by the CPU.</summary>
    None = 0,

    /// <summary>FAULT_FLAG_WRITE: write access is needed.</summary>
    Write = 1,

    /// <summary>FAULT_FLAG_REMOTE: the fault is taken on behalf of a device or another task (hmm_range_fault, GUP).</summary>
    Remote = 2,
}
