using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Notifiers;

/// <summary>
/// The range an invalidation covers (struct mmu_notifier_range): [<see cref="Start"/>, <see cref="End"/>) of
/// <see cref="Mm"/>, why, whether callbacks may sleep, and for migrations the device that started it.
/// </summary>
public readonly record struct MmuNotifierRange
{
    /// <summary>Creates a range (mmu_notifier_range_init / _owner).</summary>
    public MmuNotifierRange(Mm mm, NotifierEvent @event, ulong start, ulong end, object? owner = null, bool blockable = true)
    {
        ArgumentNullException.ThrowIfNull(mm);
        if (end <= start)
            throw new ArgumentException($"An invalidation range must not be empty: [0x{start:x}, 0x{end:x}).", nameof(end));
        Mm = mm;
        Event = @event;
        Start = start;
        End = end;
        Owner = owner;
        Blockable = blockable;
    }

    /// <summary>The address space being changed.</summary>
    public Mm Mm { get; }

    /// <summary>Why.</summary>
    public NotifierEvent Event { get; }

    /// <summary>First address (inclusive).</summary>
    public ulong Start { get; }

    /// <summary>End address (exclusive).</summary>
    public ulong End { get; }

    /// <summary>For <see cref="NotifierEvent.Migrate"/> and <see cref="NotifierEvent.Exclusive"/>: the pgmap owner that started it.</summary>
    public object? Owner { get; }

    /// <summary>
    /// mmu_notifier_range_blockable: whether callbacks may sleep. When false (the OOM reaper), a callback that would
    /// need to sleep must return false instead, and the operation fails with EAGAIN.
    /// </summary>
    public bool Blockable { get; }

    /// <summary>Whether the range overlaps [<paramref name="start"/>, <paramref name="end"/>).</summary>
    public bool Overlaps(ulong start, ulong end) => start < End && Start < end;

    /// <inheritdoc />
    public override string ToString() =>
        $"{Event} [0x{Start:x}, 0x{End:x}){(Blockable ? "" : " nonblock")}{(Owner is null ? "" : " owner=" + Owner)}";
}
