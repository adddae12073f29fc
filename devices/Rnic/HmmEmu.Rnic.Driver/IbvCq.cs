using HmmEmu.Kernel.Bus;

namespace HmmEmu.Rnic.Driver;

/// <summary>
/// A completion queue (ibv_cq): a ring of CQEs in memory the process and the device share. The process polls it and
/// arms it without a system call (<see cref="IbvContext.PollCq"/>, <see cref="IbvContext.ReqNotifyCq"/>); completion
/// events arrive through the driver's event queue (<see cref="IbvContext.GetCqEvent"/>).
/// </summary>
public sealed class IbvCq
{
    private long _events;
    private long _eventsTaken;

    internal IbvCq(IbvContext context, uint number, DmaCoherentBuffer ring, uint entries)
    {
        Context = context;
        Number = number;
        Ring = ring;
        Entries = entries;
    }

    /// <summary>The context that created it.</summary>
    public IbvContext Context { get; }

    /// <summary>The device's CQ number.</summary>
    public uint Number { get; }

    /// <summary>CQEs the ring holds.</summary>
    public uint Entries { get; }

    /// <summary>Completion events received and not yet taken.</summary>
    public long PendingEvents => Interlocked.Read(ref _events) - Interlocked.Read(ref _eventsTaken);

    internal DmaCoherentBuffer Ring { get; }

    /// <summary>The consumer index (with wrap bit); the polling thread's.</summary>
    internal uint Consumer { get; set; }

    internal Lock PollLock { get; } = new();

    internal bool IsDestroyed { get; set; }

    internal void OnCompletionEvent()
    {
        Interlocked.Increment(ref _events);
        Context.WakeWaiters();
    }

    internal bool TryTakeEvent()
    {
        while (true)
        {
            long taken = Interlocked.Read(ref _eventsTaken);
            if (taken >= Interlocked.Read(ref _events))
                return false;
            if (Interlocked.CompareExchange(ref _eventsTaken, taken + 1, taken) == taken)
                return true;
        }
    }
}
