namespace HmmEmu.Kernel.Vm;

/// <summary>madvise advice (MADV_*), with the kernel's numeric values.</summary>
public enum Advice
{
    /// <summary>MADV_NORMAL: no special treatment (accepted, changes nothing).</summary>
    Normal = 0,

    /// <summary>MADV_DONTNEED: drop the pages; private anonymous memory reads back as zero.</summary>
    DontNeed = 4,

    /// <summary>MADV_FREE: the pages may be freed lazily (treated as DONTNEED for anonymous memory).</summary>
    Free = 8,

    /// <summary>MADV_HUGEPAGE: allow transparent huge pages in the range.</summary>
    HugePage = 14,

    /// <summary>MADV_NOHUGEPAGE: forbid transparent huge pages in the range.</summary>
    NoHugePage = 15,
}
