namespace HmmEmu.Kernel;

/// <summary>
/// Deliberate kernel-path bugs that a test can switch on (<see cref="KernelOptions.Mutants"/>), the way Linux has
/// fault-injection knobs. Each imitates a real bug class from the coherence bug catalogue
/// (coherence-and-testing.md section 6) at the exact place in the kernel where that bug would be, so that the
/// coherence property suite can show it catches it. Never set outside that suite's bug catalogue.
/// </summary>
[Flags]
public enum KernelMutant : uint
{
    /// <summary>The correct kernel.</summary>
    None = 0,

    /// <summary>
    /// Bug 18, narrow sequence counter: the per-mm invalidation sequence (and so every <c>curSeq</c> given to a
    /// callback and stored by <c>SetSeq</c>) is taken modulo 8, so after four invalidations a notifier's sequence
    /// comes back to a reader's snapshot and <c>ReadRetry</c> passes a stale read (ABA). INV-4 (d) catches it.
    /// </summary>
    NarrowNotifierSeq = 1 << 0,

    /// <summary>
    /// Bug 12, zap after a refused non-blocking start: the OOM reaper frees a VMA's pages although a notifier
    /// callback refused the non-blockable MMU_NOTIFY_UNMAP, so that device keeps translations to freed frames
    /// (start and end stay paired). INV-5 (c) catches it, and INV-1 through the device's stale translations.
    /// </summary>
    OomReapIgnoresRefusal = 1 << 1,

    /// <summary>
    /// Bug 12, unbalanced end: madvise(DONTNEED) starts its MMU_NOTIFY_CLEAR invalidation but never ends it, so the
    /// count of running invalidations never returns to 0 and the sequence stays odd ("the counter becomes unable to
    /// get to 0"). INV-5 (a) catches it.
    /// </summary>
    MadviseSkipsInvalidateEnd = 1 << 2,

    /// <summary>
    /// Bug 9, fork without invalidation: dup_mmap write-protects the parent's private writable entries for COW
    /// without the MMU_NOTIFY_PROTECTION_PAGE invalidation, so a mirror keeps write access to a page that is now
    /// shared with the child. INV-10 catches it, and INV-1 (device rights above the CPU's).
    /// </summary>
    ForkSkipsInvalidation = 1 << 3,

    /// <summary>
    /// Bug 5, "flush the CPU side but not the device": mprotect changes the entries without the
    /// MMU_NOTIFY_PROTECTION_VMA invalidation, so a device keeps write access after the CPU lost it. INV-1 and
    /// INV-9 catch it.
    /// </summary>
    MprotectSkipsInvalidation = 1 << 4,

    /// <summary>
    /// Bug 15, unregister returns while a callback runs: mmu_interval_notifier_remove returns without waiting for
    /// an invalidation of that notifier that is running right now, so the driver frees state the callback still
    /// uses. INV-15 catches it.
    /// </summary>
    RemoveSkipsCallbackWait = 1 << 5,

    /// <summary>
    /// Bug 6, frame freed with a device still mapping it: munmap zaps and frees the pages without the MMU_NOTIFY_UNMAP
    /// invalidation, so a mirror keeps translations to frames that go back to the allocator. INV-1 (a translation
    /// where the CPU has none) and INV-11 (a translation of a free frame) catch it.
    /// </summary>
    MunmapSkipsInvalidation = 1 << 6,

    /// <summary>
    /// Bug 20 (early COW / missed COW notification): a write fault that breaks copy-on-write installs the new page
    /// without the MMU_NOTIFY_CLEAR invalidation, so a mirror keeps reading and writing the old page, which the process
    /// no longer sees (the device's writes are lost, its reads stale). INV-1 (a different frame) and INV-7 catch it.
    /// </summary>
    CowSkipsInvalidation = 1 << 7,

    /// <summary>
    /// Bug 14's CPU side: a CPU fault on a device-exclusive entry restores the page without the MMU_NOTIFY_CLEAR
    /// invalidation, so the device keeps its atomic mapping while the CPU writes the page: device atomics are no longer
    /// atomic. INV-1/INV-8 (an atomic translation on a page that is not device-exclusive) catch it.
    /// </summary>
    ExclusiveRestoreSkipsInvalidation = 1 << 8,

    /// <summary>
    /// Bug 9's HMM side: hmm_range_fault reports a read-only entry (a COW page shared since fork, a PROT_READ page) as
    /// writable, and skips the write fault the caller asked for, so a mirror maps writable a page the process may not
    /// write or shares with another. INV-1 (device rights above the CPU's) catches it.
    /// </summary>
    RangeFaultIgnoresReadOnly = 1 << 9,
}
