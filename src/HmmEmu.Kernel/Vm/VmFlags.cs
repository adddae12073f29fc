namespace HmmEmu.Kernel.Vm;

/// <summary>Per-VMA flags (vm_flags).</summary>
[Flags]
public enum VmFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>VM_READ.</summary>
    Read = 1 << 0,

    /// <summary>VM_WRITE.</summary>
    Write = 1 << 1,

    /// <summary>VM_EXEC.</summary>
    Exec = 1 << 2,

    /// <summary>VM_SHARED: a shared mapping (writes go to the shared object, no copy-on-write).</summary>
    Shared = 1 << 3,

    /// <summary>VM_MAYREAD: mprotect may add read.</summary>
    MayRead = 1 << 4,

    /// <summary>VM_MAYWRITE: mprotect may add write.</summary>
    MayWrite = 1 << 5,

    /// <summary>VM_MAYEXEC: mprotect may add exec.</summary>
    MayExec = 1 << 6,

    /// <summary>VM_MAYSHARE.</summary>
    MayShare = 1 << 7,

    /// <summary>VM_IO: device I/O memory; hmm_range_fault refuses it.</summary>
    Io = 1 << 8,

    /// <summary>VM_PFNMAP: raw page frames without struct page semantics.</summary>
    PfnMap = 1 << 9,

    /// <summary>VM_MIXEDMAP: a device mapping that may hold both normal pages and raw pfns.</summary>
    MixedMap = 1 << 10,

    /// <summary>VM_DONTCOPY: not inherited by fork.</summary>
    DontCopy = 1 << 11,

    /// <summary>VM_HUGEPAGE: madvise(MADV_HUGEPAGE) was applied.</summary>
    HugePage = 1 << 12,

    /// <summary>VM_NOHUGEPAGE: madvise(MADV_NOHUGEPAGE) was applied.</summary>
    NoHugePage = 1 << 13,

    /// <summary>VM_LOCKED: mlocked; madvise(DONTNEED) refuses it.</summary>
    Locked = 1 << 14,

    /// <summary>VM_HUGETLB: backed by 2 MiB hugetlb pages only (MAP_HUGETLB).</summary>
    HugeTlb = 1 << 15,

    /// <summary>The access bits that mprotect changes.</summary>
    AccessFlags = Read | Write | Exec,
}
