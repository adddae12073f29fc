namespace HmmEmu.Rnic.Model;

// The RQ and CQ doorbells of BAR2 (the SQ doorbell belongs to the requester). Driver threads; never sleep.
public sealed partial class RnicModel
{
    /// <summary>
    /// Whether moving a producer from <paramref name="old"/> to <paramref name="next"/> is a valid advance of a ring of
    /// <paramref name="entries"/> whose consumer is <paramref name="consumer"/>: in [0, 2N), at most N ahead of the
    /// consumer, and not behind the old producer.
    /// </summary>
    internal static bool IsValidAdvance(uint next, uint old, uint consumer, uint entries)
    {
        uint mask = (2 * entries) - 1;
        if (next > mask)
            return false;
        uint ahead = (next - consumer) & mask;
        return ahead <= entries && ((old - consumer) & mask) <= ahead;
    }

    internal bool RingRq(uint context, uint qpn, uint producer)
    {
        var qp = FindQp(qpn);
        if (qp is null || qp.Context != context)
            return false;
        lock (qp.Sync)
        {
            if (qp.State == RnicQpState.Reset || qp.Destroyed || !IsValidAdvance(producer, qp.RqProducer, qp.RqConsumer, qp.RqEntries))
                return false;
            qp.RqProducer = producer;
            if (qp.State == RnicQpState.Err)
                FlushPostedLocked(qp);
            return true;
        }
    }

    internal bool SetCqConsumer(uint context, uint cqn, uint consumer)
    {
        var cq = FindCq(cqn);
        return cq is not null && cq.Context == context && cq.SetConsumer(consumer);
    }

    internal bool ArmCq(uint context, uint cqn, uint consumer, bool solicitedOnly)
    {
        var cq = FindCq(cqn);
        if (cq is null || cq.Context != context || !cq.Arm(Memory, consumer, solicitedOnly, out bool fireNow))
            return false;
        if (fireNow)
            RaiseEvent(new RnicEqe(RnicEventType.Completion, RnicFaultSide.None, RnicFaultAccess.None, RnicWcStatus.Success, cq.Number, 0, 0, 0, 0, 0));
        return true;
    }

    internal RnicCq? FindCq(uint cqn) => cqn < (uint)Cqs.Length ? Volatile.Read(ref Cqs[cqn]) : null;
}
