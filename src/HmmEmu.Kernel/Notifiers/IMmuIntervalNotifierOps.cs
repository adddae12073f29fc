namespace HmmEmu.Kernel.Notifiers;

/// <summary>A driver's interval-notifier callbacks (struct mmu_interval_notifier_ops).</summary>
public interface IMmuIntervalNotifierOps
{
    /// <summary>
    /// Called before the CPU page table of an overlapping range changes. Take the lock that guards the device
    /// page table, call <see cref="MmuIntervalNotifier.SetSeq"/> with <paramref name="curSeq"/>, remove the device's
    /// mappings of the range (and wait for the device TLB), release the lock, return true. If the range is not
    /// blockable and the lock cannot be taken without sleeping, return false. Must not call
    /// <see cref="MmuIntervalNotifier.Remove"/>.
    /// </summary>
    bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq);
}
