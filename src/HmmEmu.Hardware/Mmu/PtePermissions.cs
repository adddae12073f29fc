namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// The rights a leaf <see cref="DevicePte"/> grants. A read needs <see cref="Read"/>, a write needs
/// <see cref="Write"/>, and an atomic needs all three (<see cref="ReadWriteAtomic"/>).
/// </summary>
[Flags]
public enum PtePermissions : byte
{
    /// <summary>No access (a valid entry that grants nothing answers every access with a permission fault).</summary>
    None = 0,

    /// <summary>Loads.</summary>
    Read = 1,

    /// <summary>Stores (a write-only mapping is allowed).</summary>
    Write = 2,

    /// <summary>Atomic read-modify-write; useful only together with <see cref="Read"/> and <see cref="Write"/>.</summary>
    Atomic = 4,

    /// <summary>Loads and stores.</summary>
    ReadWrite = Read | Write,

    /// <summary>Loads, stores and atomics.</summary>
    ReadWriteAtomic = Read | Write | Atomic,
}
