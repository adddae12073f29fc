using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Kernel.Mirroring;

/// <summary>
/// The request and result of <see cref="Hmm.RangeFault"/> (struct hmm_range): which virtual range, under which
/// notifier and sequence, what to fault (per entry and by default), and, after the call, one entry per page.
/// </summary>
public sealed class HmmRange
{
    /// <summary>Creates a range over [<paramref name="start"/>, <paramref name="end"/>) with an output array sized for it.</summary>
    public HmmRange(MmuIntervalNotifier notifier, ulong start, ulong end)
    {
        ArgumentNullException.ThrowIfNull(notifier);
        Notifier = notifier;
        Start = start;
        End = end;
        ulong pages = end > start ? (end - start) >> 12 : 0;
        HmmPfns = new ulong[pages];
    }

    /// <summary>The notifier whose interval covers the range.</summary>
    public MmuIntervalNotifier Notifier { get; set; }

    /// <summary>The value <see cref="MmuIntervalNotifier.ReadBegin"/> returned.</summary>
    public ulong NotifierSeq { get; set; }

    /// <summary>First address (page aligned).</summary>
    public ulong Start { get; set; }

    /// <summary>End address (exclusive, page aligned).</summary>
    public ulong End { get; set; }

    /// <summary>One entry per page: input request bits, output pfn and flags.</summary>
    public ulong[] HmmPfns { get; set; }

    /// <summary>Request bits applied to every entry (ORed after masking).</summary>
    public ulong DefaultFlags { get; set; }

    /// <summary>Which per-entry request bits count.</summary>
    public ulong PfnFlagsMask { get; set; }

    /// <summary>The pgmap owner whose device-private pages are reported rather than faulted back to RAM.</summary>
    public object? DevPrivateOwner { get; set; }

    /// <summary>Number of pages.</summary>
    public int PageCount => End > Start ? (int)((End - Start) >> 12) : 0;
}
