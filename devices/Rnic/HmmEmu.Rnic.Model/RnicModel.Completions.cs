using HmmEmu.Hardware.Memory;
namespace HmmEmu.Rnic.Model;

// CQE writing, retirement and the ERR state: shared by the requester, responder, completer and command processor.
// Every method here runs under the QP's lock and never sleeps.
public sealed partial class RnicModel
{
    internal static RnicWcOpcode WcOpcodeOf(RnicWrOpcode opcode) => opcode switch
    {
        RnicWrOpcode.RdmaWrite or RnicWrOpcode.RdmaWriteWithImm => RnicWcOpcode.RdmaWrite,
        RnicWrOpcode.RdmaRead => RnicWcOpcode.RdmaRead,
        RnicWrOpcode.AtomicCmpAndSwp => RnicWcOpcode.CompSwap,
        RnicWrOpcode.AtomicFetchAndAdd => RnicWcOpcode.FetchAdd,
        _ => RnicWcOpcode.Send,
    };

    /// <summary>Retires the finished ops at the head of the SQ, in order, writing their CQEs. Returns how many retired.</summary>
    internal int RetireLocked(RnicQp qp)
    {
        int retired = 0;
        while (qp.Outstanding.Count != 0 && qp.Outstanding[0] is { Done: true, Failed: false } op)
        {
            qp.Outstanding.RemoveAt(0);
            qp.CursorOp = Math.Max(0, qp.CursorOp - 1);
            qp.SqConsumer = (op.Index + 1) & qp.SqMask;
            retired++;
            if ((op.Wqe.Flags & RnicSendFlags.Signaled) != 0 &&
                !WriteSendCqeLocked(qp, op.Wqe, op.Index, RnicWcStatus.Success, op.IsRead ? (uint)op.Length : 0))
            {
                return retired;
            }
        }
        if (qp.State == RnicQpState.Sqd && qp.Outstanding.Count == 0 && qp.SqdNotify)
        {
            qp.SqdNotify = false;
            RaiseQpEvent(RnicEventType.SqDrained, qp);
        }
        return retired;
    }

    /// <summary>
    /// Fails <paramref name="op"/> with <paramref name="status"/>: the done ops before it retire normally, then the QP
    /// goes to ERR at once (everything else outstanding is flushed) and <paramref name="qpEvent"/>, if any, is raised.
    /// </summary>
    internal void FailOpLocked(RnicQp qp, RnicSendOp op, RnicWcStatus status, RnicEventType? qpEvent)
    {
        op.Error = status;
        RetireLocked(qp);
        EnterErrorLocked(qp, qpEvent, status, op.Index);
    }

    /// <summary>
    /// Moves the QP to ERR: every outstanding and posted WQE is completed in order (a failed op with its own status,
    /// the rest with WrFlushErr, even unsignaled ones), engine work in flight is void, and <paramref name="qpEvent"/>
    /// (if any) is raised.
    /// </summary>
    internal void EnterErrorLocked(RnicQp qp, RnicEventType? qpEvent, RnicWcStatus eventStatus = RnicWcStatus.Success, uint wqeIndex = 0)
    {
        if (qp.State == RnicQpState.Err || qp.Destroyed)
            return;
        qp.State = RnicQpState.Err;
        qp.Generation++;
        qp.SendEpoch++;
        qp.RequesterFault = qp.ResponderFault = false;
        qp.AckDeadline = qp.RnrUntil = 0;
        foreach (var op in qp.Outstanding)
            WriteSendCqeLocked(qp, op.Wqe, op.Index, op.Failed ? op.Error : RnicWcStatus.WrFlushErr, 0);
        qp.Outstanding.Clear();
        qp.CursorOp = qp.CursorPacket = 0;
        qp.SqConsumer = qp.SqNext;
        FlushPostedLocked(qp);
        if (qpEvent is { } type)
            RaiseQpEvent(type, qp, eventStatus, wqeIndex);
    }

    /// <summary>In ERR: completes every WQE posted and not yet completed (SQ and RQ) with WrFlushErr.</summary>
    internal void FlushPostedLocked(RnicQp qp)
    {
        Span<byte> sq = stackalloc byte[RnicSendWqe.Size];
        while (qp.SqNext != qp.SqProducer)
        {
            uint index = qp.SqNext;
            var wqe = Memory.TryRead(qp.SqAddress + ((index & (qp.SqEntries - 1)) * (ulong)RnicSendWqe.Size), sq)
                ? RnicSendWqe.Read(sq) : default;
            qp.SqNext = qp.SqConsumer = (index + 1) & qp.SqMask;
            WriteSendCqeLocked(qp, wqe, index, RnicWcStatus.WrFlushErr, 0);
        }
        if (qp.RecvWqe is { } current)
        {
            qp.RecvWqe = null;
            qp.RqConsumer = (qp.RecvWqeIndex + 1) & qp.RqMask;
            WriteRecvCqeLocked(qp, current.WrId, qp.RecvWqeIndex, RnicWcStatus.WrFlushErr, RnicWcOpcode.Recv, 0, 0, 0);
        }
        Span<byte> rq = stackalloc byte[RnicRecvWqe.Size];
        while (qp.RqConsumer != qp.RqProducer)
        {
            uint index = qp.RqConsumer;
            ulong wrId = Memory.TryRead(qp.RqAddress + ((index & (qp.RqEntries - 1)) * (ulong)RnicRecvWqe.Size), rq)
                ? RnicRecvWqe.Read(rq).WrId : 0;
            qp.RqConsumer = (index + 1) & qp.RqMask;
            WriteRecvCqeLocked(qp, wrId, index, RnicWcStatus.WrFlushErr, RnicWcOpcode.Recv, 0, 0, 0);
        }
    }

    internal bool WriteSendCqeLocked(RnicQp qp, RnicSendWqe wqe, uint index, RnicWcStatus status, uint byteLen) =>
        WriteCqeLocked(qp, qp.SendCq, new RnicCqe(wqe.WrId, byteLen, 0, qp.Number, 0, status, WcOpcodeOf(wqe.Opcode),
            RnicWcFlags.None, (ushort)index, false));

    internal bool WriteRecvCqeLocked(RnicQp qp, ulong wrId, uint index, RnicWcStatus status, RnicWcOpcode opcode,
        uint byteLen, uint imm, RnicWcFlags flags) =>
        WriteCqeLocked(qp, qp.RecvCq, new RnicCqe(wrId, byteLen, imm, qp.Number, qp.DestQpn, status, opcode, flags, (ushort)index, false));

    // A CQ that overruns loses the completion and stops; its QP goes to ERR (whose flush CQEs are lost as well).
    private bool WriteCqeLocked(RnicQp qp, RnicCq cq, RnicCqe cqe)
    {
        switch (cq.Write(Memory, cqe, out bool fire, out bool firstOverrun))
        {
            case CqWrite.Written:
                Counters.Completions.Increment();
                if (fire)
                    RaiseEvent(new RnicEqe(RnicEventType.Completion, RnicFaultSide.None, RnicFaultAccess.None, RnicWcStatus.Success, cq.Number, 0, 0, 0, 0, 0));
                return true;
            case CqWrite.Overrun:
                if (firstOverrun)
                    RaiseEvent(new RnicEqe(RnicEventType.CqErr, RnicFaultSide.None, RnicFaultAccess.None, RnicWcStatus.Success, cq.Number, 0, 0, 0, 0, 0));
                break;
            default:
                DeviceError(RnicDeviceError.WriteBack, RnicRegisters.StatusBadRegister, cq.RingAddress);
                break;
        }
        EnterErrorLocked(qp, RnicEventType.QpFatal, RnicWcStatus.GeneralErr);
        return false;
    }
}
