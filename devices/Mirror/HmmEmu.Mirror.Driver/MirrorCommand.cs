namespace HmmEmu.Mirror;

/// <summary>The ioctl argument (struct hmm_dmirror_cmd).</summary>
public struct MirrorCommand
{
    /// <summary>In: the page-aligned virtual address the device accesses (in the opener's address space).</summary>
    public ulong Addr;

    /// <summary>In: the caller's buffer that data is copied to or from.</summary>
    public ulong Ptr;

    /// <summary>In: how many pages.</summary>
    public ulong NPages;

    /// <summary>Out: how many pages were copied.</summary>
    public ulong CPages;

    /// <summary>Out: how many device fault rounds were needed.</summary>
    public ulong Faults;
}
