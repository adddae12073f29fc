namespace HmmEmu.Coherence.Tests.Bugs;

/// <summary>
/// The deliberate driver bug a <see cref="MutantMirrorTarget"/> carries. Each imitates a real bug class of the
/// coherence bug catalogue (coherence-and-testing.md section 6, numbered as there; "B" numbers are
/// drivers-and-bugs.md section 3) at the place in a dmirror-style driver where that bug would be, and names the
/// invariant of coherence-and-testing.md section 4.2 expected to catch it.
/// </summary>
public enum MirrorBug
{
    /// <summary>The correct driver.</summary>
    None,

    /// <summary>
    /// Catalogue 2 / B4, the missing collision check: the fault path commits what <c>hmm_range_fault</c> returned
    /// under the driver lock but never calls <c>mmu_interval_read_retry</c>, so an invalidation that ran between
    /// <c>read_begin</c> and the lock is undone by the commit (the hmm_mirror "valid flag" race of 04ec32fbc2b2 and
    /// Glisse's ea25c4317946: "nothing preventing them to undo what was invalidated"). Needs an invalidation racing
    /// a device fault. INV-4 (b) catches it, and INV-1 / INV-7 through the stale entry.
    /// </summary>
    SkipReadRetry,

    /// <summary>
    /// Catalogue 4 / B6: the invalidate callback erases the range but never calls <c>mmu_interval_set_seq</c>, so a
    /// fault that read the CPU page table before the invalidation passes <c>ReadRetry</c> and commits a stale
    /// mapping. The kernel also WARNs ("returned true ... without calling SetSeq") on every invalidation other than
    /// MIGRATE and EXCLUSIVE. INV-4 (c) catches it, and INV-1 once a fault races an invalidation.
    /// </summary>
    ForgetSetSeq,

    /// <summary>
    /// Catalogue 5 / B8, "flush the page table but not the TLB": the callback erases the device page table but
    /// leaves the device TLB's slots for the range, so the device keeps reading and writing through translations
    /// of pages the CPU unmapped, protected or freed (Xe 333b89063361, kfd 9b4e3495d1bd). INV-1 catches it (a "tlb"
    /// translation the CPU no longer justifies), INV-9 after mprotect, INV-11 once the frame is reused.
    /// </summary>
    FlushTableNotTlb,

    /// <summary>
    /// B8, invalidating too small a range (Glisse: the old <c>invalidate_page</c> ignored THP sizes): the callback
    /// erases and flushes only the first page of the range, so every other page of a multi-page munmap, mprotect or
    /// madvise keeps its device translation. INV-1 catches it (INV-9 after mprotect).
    /// </summary>
    EraseFirstPageOnly,

    /// <summary>
    /// Ignoring the HMM_PFN_WRITE bit: the commit maps every faulted page writable, so a device read of a
    /// read-only page (a PROT_READ mapping, the shared zero page, a COW page after fork) gives the device write
    /// access the CPU does not have. INV-1 (device rights above the CPU's) and INV-9 catch it, INV-10 after fork.
    /// </summary>
    IgnoreWritePermission,

    /// <summary>
    /// Catalogue 16, device atomic without exclusivity: <c>IMirrorContext.AtomicAdd</c>
    /// does its read-modify-write (two bus transactions) through an ordinary writable mapping faulted in with
    /// <c>hmm_range_fault</c> instead of taking the page with <c>make_device_exclusive</c>, so a CPU access between
    /// the read and the write is lost. INV-8 catches it (an atomic on a page that is not device-exclusive), INV-7
    /// when a CPU write interleaves.
    /// </summary>
    AtomicWithoutExclusive,

    /// <summary>
    /// Catalogue 11 / B1 (Hocko 93065ac753e4): the callback takes the driver mutex with a blocking
    /// <c>mutex_lock</c> for a non-blockable range (the OOM reaper) instead of <c>mutex_trylock</c> and returning
    /// false when contended. The kernel's <c>might_sleep</c> check throws KernelRuleViolationException on the first
    /// non-blockable invalidation. INV-5 (b) catches it.
    /// </summary>
    NonBlockableWaits,

    /// <summary>
    /// Catalogue 17 / B15, owner-skip against the wrong token: the callback skips the erase for every
    /// MMU_NOTIFY_MIGRATE range, not only those whose owner is this device, so another device's migration of a page
    /// leaves this device mapping the RAM frame the migration freed. INV-1 catches it, INV-11 once the frame is reused.
    /// </summary>
    IgnoreMigrateEventsOfOthers,

    /// <summary>
    /// B7 (notifier lifetime, cf. 6d7c3cde93c1 "mm/hmm: fix use after free with struct hmm in the mmu notifiers"):
    /// close drops the device page table and TLB but never calls <c>mmu_interval_notifier_remove</c>, so the
    /// subscription (and its mmgrab) outlives the file and later callbacks still run on the dropped state.
    /// INV-15 catches it (a notifier still inserted after close).
    /// </summary>
    CloseKeepsNotifier,

    /// <summary>
    /// Catalogue 3, the retry check outside the update lock: <c>ReadRetry</c> runs under the driver mutex, but the
    /// driver then drops the mutex to build the device entries (which takes the device's page-table write time) and
    /// takes it again to store them without checking again, so an invalidation that runs in that window is undone
    /// by the commit. The lock checker sees nothing (the check and the store each hold the lock). Needs an
    /// invalidation racing a device fault. INV-4 (b) catches it, and INV-1 through the stale entry.
    /// </summary>
    CommitAfterUnlock,
}
