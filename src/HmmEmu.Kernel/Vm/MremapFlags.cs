namespace HmmEmu.Kernel.Vm;

/// <summary>Flags of mremap (MREMAP_*).</summary>
[Flags]
public enum MremapFlags
{
    /// <summary>Resize in place only.</summary>
    None = 0,

    /// <summary>MREMAP_MAYMOVE: the mapping may move to a new address.</summary>
    MayMove = 1,

    /// <summary>MREMAP_FIXED: move exactly to the given new address (requires MayMove).</summary>
    Fixed = 2,

    /// <summary>MREMAP_DONTUNMAP: leave the old range mapped but empty (requires MayMove and equal sizes).</summary>
    DontUnmap = 4,
}
