namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// The completion of one TLB invalidation. The entries it covers are gone as soon as the invalidation call returns;
/// the ticket completes once every in-flight use that translated a covered page before the call has ended, so that
/// after it completes no access through a stale translation can still happen (the ATS invalidation-completion rule).
/// Wait for it (<see cref="Wait"/>) or poll it (<see cref="IsComplete"/>).
/// </summary>
public sealed class TlbInvalidation
{
    private readonly InFlightUses _uses;
    private readonly int[] _slots;
    private readonly long[] _generations;
    private volatile bool _complete;

    internal TlbInvalidation(InFlightUses uses, InvalidationKind kind, ushort asid, ulong firstPage, ulong lastPage,
        int entriesDropped, int[] slots, long[] generations)
    {
        _uses = uses;
        Kind = kind;
        Asid = asid;
        FirstPage = firstPage;
        LastPage = lastPage;
        EntriesDropped = entriesDropped;
        _slots = slots;
        _generations = generations;
        _complete = slots.Length == 0;
    }

    /// <summary>The invalidation's scope.</summary>
    public InvalidationKind Kind { get; }

    /// <summary>The address-space id (Range and Asid kinds).</summary>
    public ushort Asid { get; }

    /// <summary>First page number covered (Range kind).</summary>
    public ulong FirstPage { get; }

    /// <summary>Last page number covered, inclusive (Range kind).</summary>
    public ulong LastPage { get; }

    /// <summary>How many valid TLB entries the invalidation removed.</summary>
    public int EntriesDropped { get; }

    /// <summary>How many in-flight uses the invalidation had to wait for when it was issued.</summary>
    public int UsesAwaited => _slots.Length;

    /// <summary>How many of those uses have not ended yet.</summary>
    public int UsesPending
    {
        get
        {
            if (_complete)
                return 0;
            int n = 0;
            for (int i = 0; i < _slots.Length; i++)
            {
                if (_uses.Generation(_slots[i]) == _generations[i])
                    n++;
            }
            return n;
        }
    }

    /// <summary>Whether every awaited use has ended. Never sleeps; safe in any context.</summary>
    public bool IsComplete
    {
        get
        {
            if (_complete)
                return true;
            for (int i = 0; i < _slots.Length; i++)
            {
                if (_uses.Generation(_slots[i]) == _generations[i])
                    return false;
            }
            _complete = true;
            return true;
        }
    }

    /// <summary>
    /// Waits until <see cref="IsComplete"/>. May sleep: call it from a simulated thread (a driver thread or the device's
    /// invalidation worker), never while holding a spinlock or from interrupt context.
    /// </summary>
    public void Wait()
    {
        var queue = _uses.Queue;
        queue.Scheduler.Yield();
        queue.WaitUntil(this, static t => t.IsComplete);
    }

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        InvalidationKind.All => $"invalidate all: {EntriesDropped} dropped, {UsesPending}/{UsesAwaited} uses pending",
        InvalidationKind.Asid => $"invalidate asid {Asid}: {EntriesDropped} dropped, {UsesPending}/{UsesAwaited} uses pending",
        _ => $"invalidate asid {Asid} pages 0x{FirstPage:x}-0x{LastPage:x}: {EntriesDropped} dropped, " +
            $"{UsesPending}/{UsesAwaited} uses pending",
    };
}
