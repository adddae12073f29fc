namespace HmmEmu.Testing.Coherence;

/// <summary>
/// Where the suite's commands act: a few small fixed-address slots per process, so that commands collide on the
/// same pages and ranges (collisions are where coherence bugs live), and a few tracked words per page.
/// </summary>
public static class Layout
{
    /// <summary>Slots per process.</summary>
    public const int Slots = 3;

    /// <summary>Pages per slot.</summary>
    public const int PagesPerSlot = 8;

    /// <summary>Tracked pages per process.</summary>
    public const int Pages = Slots * PagesPerSlot;

    /// <summary>Tracked 64-bit words per page (at <see cref="WordOffset"/>).</summary>
    public const int WordsPerPage = 2;

    /// <summary>Page size.</summary>
    public const int PageSize = 4096;

    /// <summary>Most processes alive at once (the first one and up to two forked children).</summary>
    public const int MaxProcesses = 3;

    /// <summary>The address of slot 0; slots are 1 MiB apart, so they never merge into one VMA.</summary>
    public const ulong Base = 0x2000_0000;

    /// <summary>The address of page <paramref name="page"/> (0 ≤ page &lt; <see cref="Pages"/>).</summary>
    public static ulong PageAddress(int page) => Base + ((ulong)(page / PagesPerSlot) << 20) + ((ulong)(page % PagesPerSlot) << 12);

    /// <summary>Whether <paramref name="address"/> lies in one of the tracked pages.</summary>
    public static bool IsTracked(ulong address)
    {
        if (address < Base)
            return false;
        ulong offset = address - Base;
        return (offset >> 20) < Slots && ((offset >> 12) & 0xff) < PagesPerSlot;
    }

    /// <summary>Byte offset of tracked word <paramref name="word"/> inside its page.</summary>
    public static int WordOffset(int word) => word * (PageSize / WordsPerPage);

    /// <summary>The value a command with tag <paramref name="tag"/> writes to a tracked word: unique per (tag, page, word) and never 0.</summary>
    public static ulong Value(int tag, int page, int word) => (1UL << 63) | ((ulong)(uint)tag << 16) | ((ulong)page << 4) | (uint)word;

    /// <summary>"slot 1 pages 2..4" for messages.</summary>
    public static string Describe(int page, int count) =>
        count == 1 ? $"page {page}" : $"pages {page}..{page + count - 1}";
}
