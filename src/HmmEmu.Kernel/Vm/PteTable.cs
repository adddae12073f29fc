namespace HmmEmu.Kernel.Vm;

/// <summary>
/// One last-level page table: 512 entries covering 2 MiB. Entries are read without locks (as the hardware walker
/// and hmm_range_fault do) and written only under the owning address space's page-table lock.
/// </summary>
internal sealed class PteTable
{
    /// <summary>Entries per table.</summary>
    public const int Count = 512;

    /// <summary>The raw entries; read with <see cref="Volatile"/>, written through <see cref="Mm"/> under its page-table lock.</summary>
    public readonly ulong[] Entries = new ulong[Count];

    /// <summary>How many entries are not none. Caller holds the page-table lock.</summary>
    public int Used;

    /// <summary>Reads entry <paramref name="index"/> without locks.</summary>
    public Pte Get(int index) => new(Volatile.Read(ref Entries[index]));
}
