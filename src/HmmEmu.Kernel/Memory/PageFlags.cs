namespace HmmEmu.Kernel.Memory;

/// <summary>Per-page state bits (page->flags).</summary>
[Flags]
public enum PageFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>PG_locked: the page lock is held (I/O, migration, truncation).</summary>
    Locked = 1 << 0,

    /// <summary>PG_dirty: the contents differ from the backing store.</summary>
    Dirty = 1 << 1,

    /// <summary>PG_uptodate: the contents are valid.</summary>
    Uptodate = 1 << 2,

    /// <summary>PG_lru: the page is on the reclaim list.</summary>
    Lru = 1 << 3,

    /// <summary>An anonymous page (its owner is an address space, its index a virtual page number).</summary>
    Anon = 1 << 4,

    /// <summary>A page-cache page (its owner is a file, its index a file page number).</summary>
    PageCache = 1 << 5,

    /// <summary>PG_reserved: never allocated or freed (the shared zero page).</summary>
    Reserved = 1 << 6,

    /// <summary>The frame is on the free list.</summary>
    Free = 1 << 7,
}
