namespace HmmEmu.Analyzers.Flow;

/// <summary>How a called member may block, from its attributes or the built-in tables, weakest first.</summary>
internal enum BlockingKind : byte
{
    /// <summary>Never sleeps (or nothing is known).</summary>
    None,

    /// <summary>May sleep (<c>might_sleep</c>): a sleeping lock, an allocation that may reclaim.</summary>
    MayBlock,

    /// <summary>Sleeps until another thread or a device signals (<c>wait_for_completion</c>, <c>wait_event</c>).</summary>
    BlockingWait,

    /// <summary>May run or wait for invalidate callbacks (<c>read_begin</c>, <c>hmm_range_fault</c>, <c>remove</c>).</summary>
    MayInvalidate,
}

/// <summary>What a called member does to the device's view of memory (HMM007), in the order it does it.</summary>
[System.Flags]
internal enum DeviceEffect : byte
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>Removes device mappings (<c>[DeviceZap]</c>).</summary>
    Zap = 1,

    /// <summary>Flushes the device TLB and waits (<c>[TlbFlush]</c>).</summary>
    Flush = 2,

    /// <summary>Drops DMA mappings (<c>[DmaUnmap]</c>).</summary>
    Unmap = 4,
}

/// <summary>What a called member does to a lock.</summary>
internal enum LockEffect : byte
{
    /// <summary>Nothing.</summary>
    None,

    /// <summary>Returns holding the lock (or a scope that holds it until disposed).</summary>
    Acquire,

    /// <summary>Returns true holding the lock, false without it.</summary>
    AcquireOnSuccess,

    /// <summary>Releases the lock.</summary>
    Release,
}

/// <summary>
/// What the analyzers know about a called method: whether it may block and what it does to which lock. Built once per
/// method symbol per compilation from the HmmEmu.Annotations attributes or the built-in tables of BCL members.
/// </summary>
internal sealed class CalleeFacts
{
    /// <summary>Facts of a member nothing is known about.</summary>
    public static readonly CalleeFacts Nothing = new(BlockingKind.None, LockEffect.None, null, isSetSeq: false, reclaims: false, reclaimFlagsParameter: null, reclaimFlags: 0);

    public CalleeFacts(BlockingKind blocking, LockEffect lockEffect, string? lockTarget, bool isSetSeq, bool reclaims, string? reclaimFlagsParameter, long reclaimFlags, DeviceEffect device = DeviceEffect.None)
    {
        Device = device;
        Reclaims = reclaims;
        Blocking = blocking;
        Lock = lockEffect;
        LockTarget = lockTarget;
        IsSetSeq = isSetSeq;
        ReclaimFlagsParameter = reclaimFlagsParameter;
        ReclaimFlags = reclaimFlags;
    }

    /// <summary>How the call may block (before the allocation-flags test of <see cref="ReclaimFlagsParameter"/>).</summary>
    public BlockingKind Blocking { get; }

    /// <summary>What the call does to a lock.</summary>
    public LockEffect Lock { get; }

    /// <summary>The lock: null for the receiver, else a parameter name or a field/property of the receiver's type.</summary>
    public string? LockTarget { get; }

    /// <summary>Whether this is <c>MmuIntervalNotifier.SetSeq</c>.</summary>
    public bool IsSetSeq { get; }

    /// <summary>Whether the call allocates and may enter reclaim (<c>[MayReclaim]</c>), subject to the flags test.</summary>
    public bool Reclaims { get; }

    /// <summary>For a <c>[MayReclaim(FlagsParameter = ...)]</c> allocation: the parameter whose flags decide.</summary>
    public string? ReclaimFlagsParameter { get; }

    /// <summary>The flag bits that allow reclaim.</summary>
    public long ReclaimFlags { get; }

    /// <summary>What the call does to device mappings, TLB and DMA mappings.</summary>
    public DeviceEffect Device { get; }

    /// <summary>Whether the analyzers care about calls to this member at all.</summary>
    public bool IsInteresting => Blocking != BlockingKind.None || Lock != LockEffect.None || IsSetSeq || Device != DeviceEffect.None;
}
