namespace HmmEmu.Kernel.Vm;

/// <summary>Flags of get_user_pages and pin_user_pages (FOLL_*).</summary>
[Flags]
public enum GupFlags
{
    /// <summary>Read access.</summary>
    None = 0,

    /// <summary>FOLL_WRITE: fault the pages in writable (breaking copy-on-write).</summary>
    Write = 0x01,

    /// <summary>FOLL_LONGTERM: the pin may last indefinitely, so device memory is first migrated to system memory.</summary>
    LongTerm = 0x100,
}
