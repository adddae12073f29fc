using HmmEmu.Hardware.Memory;
using Mask = HmmEmu.Rnic.RnicQpAttrMask;
using Status = HmmEmu.Rnic.RnicCommandStatus;

namespace HmmEmu.Rnic.Model;

// MODIFY_QP: the state table of §8, value checks, and what entering each state does.
internal sealed partial class RnicCommandProcessor
{
    private const RnicAccessFlags QpAccessFlags = RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead | RnicAccessFlags.RemoteAtomic;

    private RnicCommandCompletion ModifyQp(RnicCommand c)
    {
        var qp = _model.FindQp((uint)c.Arg0);
        if (qp is null)
            return Fail(c, Status.BadObject);
        Span<byte> block = stackalloc byte[RnicQpAttributes.Size];
        if (!_model.Memory.TryRead(c.Arg2, block))
            return Fail(c, Status.MemoryError);
        var a = RnicQpAttributes.Read(block);
        var mask = (Mask)c.Arg1;
        if (c.Arg1 > uint.MaxValue || (mask & ~RnicQpStateMachine.DefinedAttributes) != 0)
            return Fail(c, Status.BadAttributes, 0, c.Arg1 & ~(ulong)RnicQpStateMachine.DefinedAttributes);
        if (!ValuesValid(a, mask))
            return Fail(c, Status.BadArgument);
        bool kick = false;
        lock (qp.Sync)
        {
            var from = qp.State;
            if ((mask & Mask.CurState) != 0 && a.CurState != from)
                return Fail(c, Status.BadState, (ulong)from);
            var to = RnicQpStateMachine.TargetOf(from, mask, a.State);
            switch (RnicQpStateMachine.Check(from, to, mask, out var missing, out var notAllowed))
            {
                case RnicQpTransitionVerdict.Illegal:
                    return Fail(c, Status.BadTransition, (ulong)from);
                case RnicQpTransitionVerdict.MissingAttributes:
                case RnicQpTransitionVerdict.AttributesNotAllowed:
                    return Fail(c, Status.BadAttributes, (ulong)missing, (ulong)notAllowed);
            }
            Apply(qp, a, mask);
            kick = Enter(qp, from, to);
        }
        if (kick)
            _model.Requester.Kick(qp);
        return Ok(c, qp.Number);
    }

    private bool ValuesValid(RnicQpAttributes a, Mask mask)
    {
        bool Has(Mask m) => (mask & m) != 0;
        return (!Has(Mask.State) || a.State <= RnicQpState.Err)
            && (!Has(Mask.CurState) || a.CurState <= RnicQpState.Err)
            && (!Has(Mask.PathMtu) || (a.PathMtu >= RnicMtu.Mtu256 && a.PathMtu <= _model.Options.ActiveMtu))
            && (!Has(Mask.Port) || a.Port == 1)
            && (!Has(Mask.PkeyIndex) || a.PkeyIndex == 0)
            && (!Has(Mask.MinRnrTimer) || a.MinRnrTimer <= RnicTimers.MaxCode)
            && (!Has(Mask.Timeout) || a.Timeout <= RnicTimers.MaxCode)
            && (!Has(Mask.AccessFlags) || (a.AccessFlags & ~QpAccessFlags) == 0)
            && (!Has(Mask.DestQpn) || a.DestQpn is >= 2 and <= RnicQpAttributes.Mask24)
            && (!Has(Mask.RqPsn) || a.RqPsn <= RnicQpAttributes.Mask24)
            && (!Has(Mask.SqPsn) || a.SqPsn <= RnicQpAttributes.Mask24)
            && (!Has(Mask.RetryCnt) || a.RetryCnt <= 7)
            && (!Has(Mask.RnrRetry) || a.RnrRetry <= 7)
            && (!Has(Mask.MaxQpRdAtomic) || a.MaxRdAtomic <= _model.Options.MaxRdAtomic)
            && (!Has(Mask.MaxDestRdAtomic) || a.MaxDestRdAtomic <= _model.Options.MaxRdAtomic);
    }

    private static void Apply(RnicQp qp, RnicQpAttributes a, Mask mask)
    {
        bool Has(Mask m) => (mask & m) != 0;
        if (Has(Mask.AccessFlags))
            qp.RemoteAccess = a.AccessFlags;
        if (Has(Mask.PathMtu))
            qp.PathMtu = a.PathMtu;
        if (Has(Mask.DestQpn))
            qp.DestQpn = a.DestQpn;
        if (Has(Mask.Av))
            qp.Av = a.Av;
        if (Has(Mask.Timeout))
            qp.Timeout = a.Timeout;
        if (Has(Mask.RetryCnt))
            qp.RetryCount = a.RetryCnt;
        if (Has(Mask.RnrRetry))
            qp.RnrRetry = a.RnrRetry;
        if (Has(Mask.MinRnrTimer))
            qp.MinRnrTimer = a.MinRnrTimer;
        if (Has(Mask.MaxQpRdAtomic))
            qp.MaxRdAtomic = a.MaxRdAtomic;
        if (Has(Mask.MaxDestRdAtomic))
            qp.MaxDestRdAtomic = a.MaxDestRdAtomic;
        if (Has(Mask.EnSqdAsyncNotify))
            qp.SqdNotify = a.EnSqdAsyncNotify;
        if (Has(Mask.RqPsn))
            qp.InitialRqPsn = a.RqPsn;
        if (Has(Mask.SqPsn))
            qp.InitialSqPsn = a.SqPsn;
    }

    // What entering `to` does. Returns whether the requester should look at the QP.
    private bool Enter(RnicQp qp, RnicQpState from, RnicQpState to)
    {
        switch (to)
        {
            case RnicQpState.Reset:
                qp.State = RnicQpState.Reset;
                qp.Generation++;
                qp.ClearLocked();
                return false;
            case RnicQpState.Err:
                _model.EnterErrorLocked(qp, qpEvent: null);
                return false;
            case RnicQpState.Rtr when from == RnicQpState.Init:
                qp.ExpectedPsn = qp.InitialRqPsn;
                qp.State = to;
                return false;
            case RnicQpState.Rts when from == RnicQpState.Rtr:
                qp.NextPsn = qp.AckedPsn = qp.InitialSqPsn;
                qp.RetriesLeft = qp.RetryCount;
                qp.RnrRetriesLeft = qp.RnrRetry;
                qp.State = to;
                return true;
            case RnicQpState.Sqd:
                qp.State = to;
                if (qp.SqdNotify && qp.Outstanding.Count == 0)
                {
                    qp.SqdNotify = false;
                    _model.RaiseQpEvent(RnicEventType.SqDrained, qp);
                }
                return false;
            default:
                qp.State = to;
                return to == RnicQpState.Rts;
        }
    }
}
