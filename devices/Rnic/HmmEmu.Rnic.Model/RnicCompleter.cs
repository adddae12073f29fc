using HmmEmu.Hardware.Engines;
using HmmEmu.Simulation;
using Op = HmmEmu.Rnic.RnicPacketOpcode;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// The completer engine: a channel worker that matches ACKs, NAKs, READ responses and atomic acknowledgements to the
/// outstanding WQEs of their QP, places READ and atomic results through the MTT, retires WQEs in order (writing their
/// CQEs), rewinds the requester on a NAK, an RNR NAK or a timeout, and ends the QP when a retry budget runs out.
/// </summary>
internal sealed class RnicCompleter : IEngineWorkHandler<RnicCompleter.Work>, IDisposable
{
    private readonly RnicModel _model;
    private readonly RnicDma _dma;
    private readonly EngineWorker<Work> _worker;

    public RnicCompleter(RnicModel model, Scheduler scheduler)
    {
        _model = model;
        _dma = new RnicDma(model);
        _worker = new EngineWorker<Work>(scheduler, $"rnic{model.Address} completer", this);
    }

    /// <summary>An incoming response, or an ACK timeout the timer saw expire at <paramref name="Now"/>.</summary>
    internal readonly record struct Work(RnicPacket[]? Packets, RnicQp? TimedOut, ulong Now);

    /// <summary>Queues responses (one or a burst) in arrival order. Never sleeps.</summary>
    public bool Post(RnicPacket[] packets) => _worker.Post(new Work(packets, null, 0));

    /// <summary>Runs <paramref name="packets"/> on the calling thread if the engine is idle (see <see cref="EngineWorker{T}.TryRunInline"/>).</summary>
    public bool TryRunInline(RnicPacket[] packets) => _worker.TryRunInline(new Work(packets, null, 0));

    public void PostTimeout(RnicQp qp, ulong now) => _worker.Post(new Work(null, qp, now));

    public void Run(Work item)
    {
        if (item.TimedOut is { } qp)
        {
            OnTimeout(qp, Math.Max(item.Now, _model.Scheduler.Clock.Now));
            return;
        }
        foreach (var packet in item.Packets!)
        {
            try
            {
                Handle(packet);
            }
            finally
            {
                _model.PacketProcessed();
            }
        }
    }

    public void Abort(Work item)
    {
        if (item.Packets is { } packets)
        {
            foreach (var packet in packets)
                _model.PacketProcessed();
        }
    }

    public void Dispose() => _worker.Dispose();

    /// <summary>DEREG_MR: a fault pending on <paramref name="mr"/> ends as if RESUME with ERROR.</summary>
    public void FailFaultsOnMr(RnicQp qp, RnicMr mr, RnicResponder responder)
    {
        bool requester, responderSide;
        lock (qp.Sync)
        {
            requester = qp.RequesterFault && qp.RequesterFaultKey == mr.Key.Value;
            responderSide = qp.ResponderFault && qp.ResponderFaultKey == mr.Key.Value;
        }
        if (requester)
            _model.Requester.Resume(qp, error: true);
        if (responderSide)
            responder.Resume(qp, error: true);
    }

    private void Handle(RnicPacket packet)
    {
        var h = packet.Header;
        var qp = _model.FindQp(h.DestQpn);
        if (qp is null)
            return;
        Interlocked.Increment(ref qp.Busy);
        try
        {
            switch (h.Opcode)
            {
                case Op.Acknowledge:
                    OnAck(qp, h);
                    break;
                case Op.AtomicAcknowledge:
                    OnResponse(qp, packet, atomic: true);
                    break;
                default:
                    OnResponse(qp, packet, atomic: false);
                    break;
            }
        }
        finally
        {
            Interlocked.Decrement(ref qp.Busy);
        }
    }

    private static bool Active(RnicQp qp, RnicPacketHeader h) =>
        qp.State is RnicQpState.Rts or RnicQpState.Sqd && !qp.Destroyed && h.SrcQpn == qp.DestQpn;

    private void OnAck(RnicQp qp, RnicPacketHeader h)
    {
        bool kick = false;
        ulong now = _model.Scheduler.Clock.Now;
        lock (qp.Sync)
        {
            if (!Active(qp, h))
                return;
            uint psn = h.Psn;
            uint before = RnicPacketHeader.PsnAdd(psn, RnicPacketHeader.Mask24);
            switch (h.Syndrome)
            {
                case RnicAckSyndrome.Ack:
                    kick = AckUpToLocked(qp, psn, now);
                    break;
                case RnicAckSyndrome.RnrNak:
                    AckUpToLocked(qp, before, now);
                    if (qp.RnrRetry != RnicQpAttributes.RnrRetryInfinite)
                    {
                        if (qp.RnrRetriesLeft == 0)
                        {
                            FailAtLocked(qp, psn, RnicWcStatus.RnrRetryExcErr);
                            return;
                        }
                        qp.RnrRetriesLeft--;
                    }
                    if (qp.RewindLocked(psn))
                        _model.Counters.Retransmissions.Increment();
                    qp.RnrUntil = now + RnicTimers.RnrTimerNs(h.SyndromeValue);
                    qp.AckDeadline = 0;
                    _model.Timer.Wake();
                    break;
                case RnicAckSyndrome.NakPsnSequenceError:
                    AckUpToLocked(qp, before, now);
                    if (qp.RetriesLeft == 0)
                    {
                        FailAtLocked(qp, psn, RnicWcStatus.RetryExcErr);
                        return;
                    }
                    qp.RetriesLeft--;
                    if (qp.RewindLocked(psn))
                        _model.Counters.Retransmissions.Increment();
                    kick = true;
                    break;
                case RnicAckSyndrome.NakInvalidRequest:
                    AckUpToLocked(qp, before, now);
                    FailAtLocked(qp, psn, RnicWcStatus.RemInvReqErr);
                    return;
                case RnicAckSyndrome.NakRemoteAccessError:
                    AckUpToLocked(qp, before, now);
                    FailAtLocked(qp, psn, RnicWcStatus.RemAccessErr);
                    return;
                case RnicAckSyndrome.NakRemoteOperationalError:
                    AckUpToLocked(qp, before, now);
                    FailAtLocked(qp, psn, RnicWcStatus.RemOpErr);
                    return;
                default:
                    return;     // an unknown syndrome is ignored
            }
        }
        if (kick)
            _model.Requester.Kick(qp);
    }

    // READ responses and atomic acknowledgements: place the data, then complete the WQE once every packet is placed.
    private void OnResponse(RnicQp qp, RnicPacket packet, bool atomic)
    {
        var h = packet.Header;
        RnicSendOp? op = null;
        int k = 0;
        long generation;
        ulong now = _model.Scheduler.Clock.Now;
        lock (qp.Sync)
        {
            if (!Active(qp, h) || qp.RequesterFault)
                return;     // while a requester fault is pending, responses are dropped and re-read after RESUME
            foreach (var o in qp.Outstanding)
            {
                if (!o.Done && (atomic ? o.IsAtomic : o.IsRead) && o.OffsetOf(h.Psn) >= 0)
                {
                    op = o;
                    break;
                }
            }
            if (op is null)
                return;     // stale or duplicate
            k = op.OffsetOf(h.Psn);
            if (k < op.Placed)
                return;     // duplicate
            if (k > op.Placed)
            {
                // A response was lost: ask again from the first byte not placed, once per gap.
                if (op.GapAt != op.Placed && qp.RewindLocked(RnicPacketHeader.PsnAdd(op.FirstPsn, (uint)op.Placed)))
                {
                    op.GapAt = op.Placed;
                    _model.Counters.Retransmissions.Increment();
                    Kick(qp);
                }
                return;
            }
            int expected = atomic ? 0 : (int)Math.Min((ulong)op.Mtu, op.Length - Math.Min((ulong)k * (ulong)op.Mtu, op.Length));
            if (!atomic && packet.Payload.Length != expected)
            {
                _model.FailOpLocked(qp, op, RnicWcStatus.BadRespErr, qpEvent: null);
                return;
            }
            // Everything before the READ or atomic is acknowledged by its response.
            AckUpToLocked(qp, RnicPacketHeader.PsnAdd(op.FirstPsn, RnicPacketHeader.Mask24), now);
            generation = qp.Generation;
        }
        DmaResult result;
        DmaFault fault = default;
        if (atomic)
        {
            Span<byte> value = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(value, h.SwapAdd);
            result = _dma.CopySges(qp, [op.Wqe.Sge0], 0, value, toMemory: true, out fault);
        }
        else if (packet.Payload.Length == 0)
        {
            result = DmaResult.Ok;
        }
        else
        {
            Span<RnicSge> sges = stackalloc RnicSge[RnicSendWqe.MaxSge];
            for (int i = 0; i < op.Wqe.SgeCount; i++)
                sges[i] = op.Wqe.Sge(i);
            result = _dma.CopySges(qp, sges[..op.Wqe.SgeCount], (ulong)k * (ulong)op.Mtu, packet.Payload, toMemory: true, out fault);
        }
        bool kick = false;
        lock (qp.Sync)
        {
            if (qp.Generation != generation || op.Placed != k || op.Done)
                return;
            switch (result)
            {
                case DmaResult.Fault:
                    qp.RequesterFault = true;
                    qp.RequesterFaultWqe = op.Index;
                    qp.RequesterFaultKey = fault.Key;
                    qp.RewindLocked(RnicPacketHeader.PsnAdd(op.FirstPsn, (uint)op.Placed));
                    _model.Counters.RequesterFaults.Increment();
                    _model.RaiseEvent(RnicEqe.RequesterFault(qp.Number, op.Index, fault.Key, fault.Address, fault.Length,
                        atomic ? RnicFaultAccess.Write : fault.Access, 0));
                    return;
                case DmaResult.ProtectionError:
                    _model.FailOpLocked(qp, op, RnicWcStatus.LocProtErr, qpEvent: null);
                    return;
            }
            op.Placed = k + 1;
            // Every placed response is forward progress: the retry budget refills and the ACK timer restarts.
            if (op.Placed == op.Packets)
            {
                op.Done = true;
                if (RnicPacketHeader.PsnDiff(op.LastPsn, qp.AckedPsn) >= 0)
                    qp.AckedPsn = RnicPacketHeader.PsnAdd(op.LastPsn, 1);
                Progress(qp, now);
                _model.RetireLocked(qp);
                kick = true;
            }
            else
            {
                // The PSNs of the placed responses are acknowledged: a re-issued READ must fit the send window.
                uint placedUpTo = RnicPacketHeader.PsnAdd(op.FirstPsn, (uint)op.Placed);
                if (RnicPacketHeader.PsnDiff(placedUpTo, qp.AckedPsn) > 0)
                    qp.AckedPsn = placedUpTo;
                Progress(qp, now);
            }
        }
        if (kick)
            _model.Requester.Kick(qp);
    }

    private void Kick(RnicQp qp) => _model.Requester.Kick(qp);

    private void OnTimeout(RnicQp qp, ulong now)
    {
        lock (qp.Sync)
        {
            if (qp.State is not (RnicQpState.Rts or RnicQpState.Sqd) || qp.Destroyed || qp.AckDeadline == 0 || now < qp.AckDeadline)
                return;
            if (!HasUnacknowledgedLocked(qp))
            {
                qp.AckDeadline = 0;
                return;
            }
            _model.Counters.Timeouts.Increment();
            if (qp.RetriesLeft == 0)
            {
                FailAtLocked(qp, qp.AckedPsn, RnicWcStatus.RetryExcErr);
                return;
            }
            qp.RetriesLeft--;
            var oldest = qp.Outstanding.Find(o => !o.Done);
            uint from = oldest is not null && oldest.NeedsResponse
                ? RnicPacketHeader.PsnAdd(oldest.FirstPsn, (uint)oldest.Placed)
                : qp.AckedPsn;
            if (oldest is not null && !qp.RewindLocked(from))
                qp.RewindLocked(RnicPacketHeader.PsnAdd(oldest.FirstPsn, (uint)(oldest.NeedsResponse ? oldest.Placed : 0)));
            _model.Counters.Retransmissions.Increment();
            qp.AckDeadline = now + RnicTimers.TimeoutNs(qp.Timeout);
        }
        _model.Timer.Wake();
        _model.Requester.Kick(qp);
    }

    // Sent packets not yet acknowledged (or READs/atomics waiting for responses).
    private static bool HasUnacknowledgedLocked(RnicQp qp) =>
        qp.Outstanding.Exists(o => !o.Done) && (qp.CursorOp > 0 || qp.CursorPacket > 0);

    /// <summary>
    /// Every PSN up to and including <paramref name="psn"/> is acknowledged: SENDs and WRITEs it covers are done.
    /// Returns whether anything moved.
    /// </summary>
    private bool AckUpToLocked(RnicQp qp, uint psn, ulong now)
    {
        uint next = RnicPacketHeader.PsnAdd(psn, 1);
        if (RnicPacketHeader.PsnDiff(next, qp.AckedPsn) <= 0 || RnicPacketHeader.PsnDiff(next, qp.NextPsn) > 0)
            return false;       // old, or beyond anything sent
        qp.AckedPsn = next;
        foreach (var op in qp.Outstanding)
        {
            if (!op.NeedsResponse && !op.Done && RnicPacketHeader.PsnDiff(op.LastPsn, psn) <= 0)
                op.Done = true;
        }
        Progress(qp, now);
        _model.RetireLocked(qp);
        return true;
    }

    // Forward progress refills the retry budgets and restarts the ACK timer for what is still unacknowledged.
    private static void Progress(RnicQp qp, ulong now)
    {
        qp.RetriesLeft = qp.RetryCount;
        qp.RnrRetriesLeft = qp.RnrRetry;
        qp.AckDeadline = HasUnacknowledgedLocked(qp) && qp.AckOwedLocked && qp.Timeout != 0 ? now + RnicTimers.TimeoutNs(qp.Timeout) : 0;
    }

    // The WQE that owns psn (else the oldest outstanding one) completes with status; the QP goes to ERR.
    private void FailAtLocked(RnicQp qp, uint psn, RnicWcStatus status)
    {
        var op = qp.Outstanding.Find(o => o.OffsetOf(psn) >= 0) ?? qp.Outstanding.Find(o => !o.Done);
        if (op is not null)
            _model.FailOpLocked(qp, op, status, qpEvent: null);
        else
            _model.EnterErrorLocked(qp, null);
    }
}
