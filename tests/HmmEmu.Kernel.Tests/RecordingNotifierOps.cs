using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Kernel.Tests;

/// <summary>
/// A well-behaved driver's invalidate callback that records every range it is called with. It takes
/// <see cref="DriverLock"/> (if set) around <see cref="MmuIntervalNotifier.SetSeq"/>, with TryLock for non-blockable
/// ranges; <see cref="RefuseNonBlockable"/> makes it refuse every non-blockable range, as a driver whose lock is
/// contended would. <see cref="OnInvalidate"/> runs inside the callback after SetSeq, under the driver lock.
/// </summary>
internal sealed class RecordingNotifierOps : IMmuIntervalNotifierOps
{
    private readonly List<MmuNotifierRange> _ranges = [];
    private int _refused;

    /// <summary>The lock the callback takes around SetSeq, as a driver's page-table lock.</summary>
    public KMutex? DriverLock { get; init; }

    /// <summary>Whether every non-blockable range is refused (the callback returns false).</summary>
    public bool RefuseNonBlockable { get; init; }

    /// <summary>Extra work done inside the callback, after SetSeq.</summary>
    public Action<MmuIntervalNotifier, MmuNotifierRange>? OnInvalidate { get; set; }

    /// <summary>Every range accepted so far, in call order.</summary>
    public IReadOnlyList<MmuNotifierRange> Ranges
    {
        get
        {
            lock (_ranges)
                return [.. _ranges];
        }
    }

    /// <summary>How many ranges were refused.</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>Forgets the ranges recorded so far.</summary>
    public void Clear()
    {
        lock (_ranges)
            _ranges.Clear();
    }

    /// <inheritdoc />
    public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
    {
        if (RefuseNonBlockable && !range.Blockable)
        {
            Interlocked.Increment(ref _refused);
            return false;
        }
        if (DriverLock is { } driverLock)
        {
            if (range.Blockable)
            {
                driverLock.Lock();
            }
            else if (!driverLock.TryLock())
            {
                Interlocked.Increment(ref _refused);
                return false;
            }
        }
        try
        {
            notifier.SetSeq(curSeq);
            lock (_ranges)
                _ranges.Add(range);
            OnInvalidate?.Invoke(notifier, range);
        }
        finally
        {
            DriverLock?.Unlock();
        }
        return true;
    }
}
