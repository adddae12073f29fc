namespace HmmEmu.Kernel.Vm;

/// <summary>Outcome of handling a page fault (vm_fault_t, reduced to what callers act on).</summary>
public enum VmFaultResult
{
    /// <summary>The page is now mapped with the requested access.</summary>
    Ok = 0,

    /// <summary>VM_FAULT_SIGSEGV: no VMA, or the VMA forbids the access.</summary>
    SigSegv,

    /// <summary>VM_FAULT_SIGBUS: the file has no page there (beyond end of file), or the mapping cannot supply one.</summary>
    SigBus,

    /// <summary>VM_FAULT_OOM: no memory for the page or its tables.</summary>
    Oom,
}
