namespace HmmEmu.Kernel.Memory;

/// <summary>The reclaim policy the allocator calls on its slow path.</summary>
internal interface IPageReclaimer
{
    /// <summary>
    /// Tries to free up to <paramref name="pages"/> pages. Runs in the allocating thread, inside reclaim context.
    /// Returns how many were freed. May sleep.
    /// </summary>
    int Reclaim(int pages);
}
