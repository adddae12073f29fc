namespace HmmEmu.Kernel.Locking;

/// <summary>
/// A lock class as the lock checker sees it: every lock created with the same name belongs to the same class, and
/// ordering rules are learnt and enforced per class (like a lockdep key).
/// </summary>
public sealed class LockClass
{
    internal LockClass(int id, string name, LockKind kind)
    {
        Id = id;
        Name = name;
        Kind = kind;
    }

    /// <summary>Dense identifier within one <see cref="Lockdep"/>.</summary>
    public int Id { get; }

    /// <summary>The class name, e.g. "mm.mmap_lock" or "dmirror.mutex".</summary>
    public string Name { get; }

    /// <summary>What kind of lock this class is.</summary>
    public LockKind Kind { get; }

    // Usage state for the irq-safety check, under Lockdep's lock.
    internal string? UsedInIrqSite;
    internal string? UsedIrqsOnSite;

    /// <inheritdoc />
    public override string ToString() => $"({Name})";
}
