using HmmEmu.Kernel;

namespace HmmEmu.Rnic.Driver;

// The data path: what a user-space provider library does without entering the kernel. WQEs and CQEs go through the
// rings the process shares with the device, and doorbells through the context's page of BAR2.
public sealed partial class IbvContext
{
    /// <summary>
    /// ibv_post_send: writes the WQE and rings the SQ doorbell. ENOMEM when the SQ is full (slots free up as send
    /// completions are polled), EINVAL for more than four SGEs, a destroyed QP or one in RESET. Never sleeps.
    /// </summary>
    public Errno PostSend(IbvQp qp, in IbvSendWr wr)
    {
        Own(qp, qp?.Context, "PostSend");
        var sges = wr.Sges ?? [];
        if (sges.Length > RnicSendWqe.MaxSge || qp!.IsDestroyed || qp.State == RnicQpState.Reset)
            return Errno.EINVAL;
        var wqe = new RnicSendWqe(wr.Opcode, wr.Flags, (byte)sges.Length, wr.Imm, wr.WrId, wr.RemoteAddress, wr.Rkey,
            wr.CompareAdd, wr.Swap, Sge(sges, 0), Sge(sges, 1), Sge(sges, 2), Sge(sges, 3));
        lock (qp.PostLock)
        {
            uint mask = (2 * qp.SqEntries) - 1;
            if (((qp.SqProducer - qp.SqFree) & mask) == qp.SqEntries)
                return Errno.ENOMEM;
            uint slot = qp.SqProducer & (qp.SqEntries - 1);
            wqe.Write(qp.Sq.Span.Slice((int)(slot * RnicSendWqe.Size), RnicSendWqe.Size));
            qp.SqProducer = (qp.SqProducer + 1) & mask;
            Device.Bar2.Write64(RnicDoorbells.PageOf((int)Index) + RnicDoorbells.SqDoorbell,
                RnicDoorbells.Encode(qp.QpNum, qp.SqProducer));
        }
        return Errno.Ok;
    }

    /// <summary>
    /// ibv_post_recv: writes the receive WQE and rings the RQ doorbell. ENOMEM when the RQ is full, EINVAL for more
    /// than three SGEs, a destroyed QP or one in RESET. Never sleeps.
    /// </summary>
    public Errno PostRecv(IbvQp qp, in IbvRecvWr wr)
    {
        Own(qp, qp?.Context, "PostRecv");
        var sges = wr.Sges ?? [];
        if (sges.Length > RnicRecvWqe.MaxSge || qp!.IsDestroyed || qp.State == RnicQpState.Reset)
            return Errno.EINVAL;
        var wqe = new RnicRecvWqe(wr.WrId, (byte)sges.Length, Sge(sges, 0), Sge(sges, 1), Sge(sges, 2));
        lock (qp.PostLock)
        {
            uint mask = (2 * qp.RqEntries) - 1;
            if (((qp.RqProducer - qp.RqFree) & mask) == qp.RqEntries)
                return Errno.ENOMEM;
            uint slot = qp.RqProducer & (qp.RqEntries - 1);
            wqe.Write(qp.Rq.Span.Slice((int)(slot * RnicRecvWqe.Size), RnicRecvWqe.Size));
            qp.RqProducer = (qp.RqProducer + 1) & mask;
            Device.Bar2.Write64(RnicDoorbells.PageOf((int)Index) + RnicDoorbells.RqDoorbell,
                RnicDoorbells.Encode(qp.QpNum, qp.RqProducer));
        }
        return Errno.Ok;
    }

    /// <summary>
    /// ibv_poll_cq: moves up to <paramref name="completions"/>.Length work completions out of the CQ, oldest first,
    /// and returns how many. Completions free their QP's ring slots (an unsignaled send's slot frees with the next
    /// signaled one). Never sleeps.
    /// </summary>
    public int PollCq(IbvCq cq, Span<RnicCqe> completions)
    {
        Own(cq, cq?.Context, "PollCq");
        int n = 0;
        lock (cq!.PollLock)
        {
            uint entries = cq.Entries, mask = (2 * entries) - 1;
            while (n < completions.Length && !cq.IsDestroyed)
            {
                var slot = cq.Ring.Span.Slice((int)((cq.Consumer & (entries - 1)) * RnicCqe.Size), RnicCqe.Size);
                if (!RnicCqe.HasPhase(slot, RnicCqe.PhaseFor(cq.Consumer, entries)))
                    break;
                var cqe = RnicCqe.Read(slot);
                completions[n++] = cqe;
                cq.Consumer = (cq.Consumer + 1) & mask;
                Retire(cqe);
            }
            if (n != 0)
            {
                Device.Bar2.Write64(RnicDoorbells.PageOf((int)Index) + RnicDoorbells.CqConsumerDoorbell,
                    RnicDoorbells.Encode(cq.Number, cq.Consumer));
            }
        }
        return n;
    }

    /// <summary>
    /// ibv_req_notify_cq: the next completion (with <paramref name="solicitedOnly"/>, the next solicited or error one)
    /// raises one completion event, taken with <see cref="GetCqEvent"/>. A completion already waiting fires at once.
    /// Never sleeps.
    /// </summary>
    public Errno ReqNotifyCq(IbvCq cq, bool solicitedOnly)
    {
        Own(cq, cq?.Context, "ReqNotifyCq");
        if (cq!.IsDestroyed)
            return Errno.EINVAL;
        uint consumer;
        lock (cq.PollLock)
            consumer = cq.Consumer;
        Device.Bar2.Write64(RnicDoorbells.PageOf((int)Index) + RnicDoorbells.CqArmDoorbell,
            RnicDoorbells.EncodeArm(cq.Number, consumer, solicitedOnly));
        return Errno.Ok;
    }

    private static RnicSge Sge(RnicSge[] sges, int i) => i < sges.Length ? sges[i] : default;

    // A completion tells which ring slots the device is done with.
    private void Retire(RnicCqe cqe)
    {
        IbvQp? qp;
        lock (_lock)
            qp = _qpByNumber.GetValueOrDefault(cqe.QpNumber);
        if (qp is null)
            return;
        lock (qp.PostLock)
        {
            if (cqe.Opcode >= RnicWcOpcode.Recv)
                qp.RqFree = (uint)(cqe.WqeIndex + 1) & ((2 * qp.RqEntries) - 1);
            else
                qp.SqFree = (uint)(cqe.WqeIndex + 1) & ((2 * qp.SqEntries) - 1);
        }
    }
}
