using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Engines;
using HmmEmu.Simulation;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// The requester engine: a channel worker that, for each QP it is kicked for, fetches send WQEs from the SQ ring,
/// gathers their data through the MTT and sends packets, within the send window, the READ/atomic limit and FENCE. It
/// resends from the QP's cursor after a rewind (NAK, RNR NAK, timeout, resumed fault). A local ODP miss pauses the
/// QP's send side and raises a requester page fault; RESUME continues it.
/// </summary>
internal sealed class RnicRequester : IEngineWorkHandler<RnicQp>, IDisposable
{
    private readonly RnicModel _model;
    private readonly RnicDma _dma;
    // Packets handed to the link at once (threaded mode wakes the far side once per burst): the ACK interval's default,
    // so a burst ends on a packet that asks for an ACK.
    private const int BurstPackets = 64;

    // Packets in one zero-copy segment at most (the send window bounds it too). The far responder still answers each
    // ACK request inside it as it gets there, so a long segment does not delay the ACKs that move the window.
    private const int MaxSegmentPackets = RnicSegmentStorage.MaxPackets;

    private readonly EngineWorker<RnicQp> _worker;
    private readonly List<RnicPacket> _burst = new(BurstPackets);     // the worker thread's
    private int _burstPackets;      // packets in _burst (a segment counts as its packets)
    private bool _timerWakeDeferred;        // threaded mode: a deadline was armed during this Run
    private int _active;

    public RnicRequester(RnicModel model, Scheduler scheduler)
    {
        _model = model;
        _dma = new RnicDma(model);
        _worker = new EngineWorker<RnicQp>(scheduler, $"rnic{model.Address} requester", this,
            model.Options.RequesterIdleSpinRounds);
    }

    /// <summary>Asks the engine to look at <paramref name="qp"/>. Never sleeps.</summary>
    public void Kick(RnicQp qp) => _worker.Post(qp);

    /// <summary>SQ_DB from context <paramref name="context"/>. Returns false to drop the doorbell.</summary>
    public bool RingSq(uint context, uint qpn, uint producer)
    {
        var qp = _model.FindQp(qpn);
        if (qp is null || qp.Context != context)
            return false;
        lock (qp.Sync)
        {
            if (qp.State == RnicQpState.Reset || qp.Destroyed ||
                !RnicModel.IsValidAdvance(producer, qp.SqProducer, qp.SqConsumer, qp.SqEntries))
            {
                return false;
            }
            qp.SqProducer = producer;
            if (qp.State == RnicQpState.Err)
            {
                _model.FlushPostedLocked(qp);
                return true;
            }
        }
        Kick(qp);
        return true;
    }

    /// <summary>RESUME of the requester side. Returns false when no requester fault is pending.</summary>
    public bool Resume(RnicQp qp, bool error)
    {
        lock (qp.Sync)
        {
            if (!qp.RequesterFault)
                return false;
            qp.RequesterFault = false;
            if (error)
            {
                var op = qp.Outstanding.Find(o => o.Index == qp.RequesterFaultWqe);
                if (op is not null)
                    _model.FailOpLocked(qp, op, RnicWcStatus.LocProtErr, RnicEventType.QpFatal);
                else
                    _model.EnterErrorLocked(qp, RnicEventType.QpFatal, RnicWcStatus.LocProtErr, qp.RequesterFaultWqe);
                return true;
            }
        }
        Kick(qp);
        return true;
    }

    /// <summary>Whether the engine is inside a QP's send loop (a packet it committed may not be on the link yet).</summary>
    public bool IsActive => Volatile.Read(ref _active) != 0;

    public void Run(RnicQp qp)
    {
        Interlocked.Increment(ref qp.Busy);
        Interlocked.Increment(ref _active);
        try
        {
            // Packets go to the link in bursts, so that the far side's engines wake once per burst.
            while (Step(qp))
            {
                if (_burstPackets >= BurstPackets)
                    Flush();
            }
        }
        finally
        {
            Flush();
            if (_timerWakeDeferred)
            {
                _timerWakeDeferred = false;
                bool armed;
                lock (qp.Sync)
                    armed = qp.AckDeadline != 0;
                if (armed)
                    _model.Timer.Wake();
            }
            Interlocked.Decrement(ref qp.Busy);
            if (Interlocked.Decrement(ref _active) == 0)
                _model.Timer.LinkQuiet();
        }
    }

    public void Abort(RnicQp item)
    {
        // Shutting down: nothing is owed for a kick.
    }

    public void Dispose() => _worker.Dispose();

    // Builds one packet into the burst. Returns false when the QP cannot send anything more for now.
    private bool Step(RnicQp qp)
    {
        RnicSendOp op;
        int k, room;
        long epoch;
        ulong now = _model.Scheduler.Clock.Now;
        lock (qp.Sync)
        {
            if (!qp.CanSendLocked(now))
                return false;
            if (qp.CursorOp >= qp.Outstanding.Count && !FetchLocked(qp))
                return false;
            op = qp.Outstanding[qp.CursorOp];
            k = qp.CursorPacket;
            uint psn = RnicPacketHeader.PsnAdd(op.FirstPsn, (uint)k);
            room = _model.Options.SendWindowPackets - RnicPacketHeader.PsnDiff(psn, qp.AckedPsn);
            if (room <= 0)
                return false;
            epoch = qp.SendEpoch;
        }
        // Several packets of a SEND or WRITE go as one zero-copy segment when the link carries them (threaded mode).
        RnicPacket? packet = null;
        var result = DmaResult.Ok;
        DmaFault fault = default;
        int wanted = Math.Min(Math.Min(op.Packets - k, room), MaxSegmentPackets);
        if (!op.NeedsResponse && wanted >= 2 && _model.MayBuildSegment())
            packet = BuildSegment(qp, op, k, wanted);
        if (packet is null)
            result = Build(qp, op, k, out packet, out fault);
        int count = packet?.PacketCount ?? 1;
        bool armed = false;
        lock (qp.Sync)
        {
            if (qp.SendEpoch != epoch)
            {
                packet?.Segment?.Release();
                return true;        // rewound or changed state meanwhile: look again
            }
            switch (result)
            {
                case DmaResult.Fault:
                    qp.RequesterFault = true;
                    qp.RequesterFaultWqe = op.Index;
                    qp.RequesterFaultKey = fault.Key;
                    _model.Counters.RequesterFaults.Increment();
                    _model.RaiseEvent(RnicEqe.RequesterFault(qp.Number, op.Index, fault.Key, fault.Address, fault.Length, fault.Access, 0));
                    return false;
                case DmaResult.ProtectionError:
                    _model.FailOpLocked(qp, op, RnicWcStatus.LocProtErr, qpEvent: null);
                    return false;
            }
            if (op.NeedsResponse || k + count == op.Packets)
            {
                qp.CursorOp++;
                qp.CursorPacket = 0;
            }
            else
            {
                qp.CursorPacket = k + count;
            }
            if (LastAckRequest(packet!) is { } ackRequest)
            {
                qp.LastAckRequestPsn = ackRequest.Psn;
                qp.AckRequested = true;
                if (qp.AckDeadline == 0 && qp.Timeout != 0)
                {
                    qp.AckDeadline = now + RnicTimers.TimeoutNs(qp.Timeout);
                    armed = true;
                }
            }
        }
        // Only a new deadline needs the timer: it re-reads deadlines when it wakes anyway. In threaded mode it would not
        // fire while this engine is active (its quiet check), so the wake waits for the end of Run, when the ACK has
        // often come back already (the far side ran the burst inline) and the timer need not wake at all.
        if (armed && _model.Scheduler.Mode == SchedulerMode.Threaded)
            _timerWakeDeferred = true;
        else if (armed)
            _model.Timer.Wake();
        _model.Scheduler.Charge(_model.Options.PacketNs * (ulong)count);
        _burst.Add(packet!);
        _burstPackets += count;
        return true;
    }

    // The header of the last packet that asks for an ACK (a segment's last such packet), or null.
    private static RnicPacketHeader? LastAckRequest(RnicPacket packet)
    {
        if (packet.Segment is not { } segment)
            return (packet.Header.Flags & RnicPacketFlags.AckRequest) != 0 ? packet.Header : null;
        var headers = segment.Headers;
        for (int i = headers.Length - 1; i >= 0; i--)
        {
            if ((headers[i].Flags & RnicPacketFlags.AckRequest) != 0)
                return headers[i];
        }
        return null;
    }

    // Up to `packets` data packets of op from packet k as one segment, its payload left in place (see RnicSegment).
    // Null when fewer than two
    // packets could be gathered: the per-packet path then sends (or fails) the next one. Outside the QP's lock.
    private RnicPacket? BuildSegment(RnicQp qp, RnicSendOp op, int k, int packets)
    {
        var wqe = op.Wqe;
        ulong offset = (ulong)k * (ulong)op.Mtu;
        long length = (long)Math.Min((ulong)packets * (ulong)op.Mtu, op.Length - offset);
        var storage = _model.RentSegmentStorage();
        int extents = 0;
        Span<RnicSge> sges = stackalloc RnicSge[RnicSendWqe.MaxSge];
        for (int i = 0; i < wqe.SgeCount; i++)
            sges[i] = wqe.Sge(i);
        var translation = _model.Translation;
        var use = translation.BeginUse();
        long gathered = _dma.Gather(use, qp, sges[..wqe.SgeCount], offset, length, storage.ExtentAddress, storage.ExtentLength,
            ref extents);
        int whole = gathered == length ? packets : (int)(gathered / op.Mtu);
        if (whole < 2)
        {
            translation.EndUse(use);
            _model.SegmentStorageUnused(storage);
            return null;
        }
        var headers = storage.Headers;
        for (int i = 0; i < whole; i++)
        {
            ulong packetOffset = offset + ((ulong)i * (ulong)op.Mtu);
            headers[i] = DataHeader(qp, op, k + i, (int)Math.Min((ulong)op.Mtu, op.Length - packetOffset));
        }
        _model.Counters.SegmentsSent.Increment();
        return new RnicPacket(new RnicSegment(_model, use, storage, whole, extents));
    }

    private void Flush()
    {
        if (_burst.Count == 0)
            return;
        try
        {
            _model.SendBurst(_burst, holdsNoLock: true);
        }
        finally
        {
            _burst.Clear();         // even if the far side threw: a burst is never sent twice
            _burstPackets = 0;
        }
    }

    // Takes the next WQE off the SQ, if the limits allow. Under the QP's lock.
    private bool FetchLocked(RnicQp qp)
    {
        if (qp.State != RnicQpState.Rts || qp.SqNext == qp.SqProducer)
            return false;
        Span<byte> bytes = stackalloc byte[RnicSendWqe.Size];
        uint index = qp.SqNext;
        bool readable = _model.Memory.TryRead(qp.SqAddress + ((index & (qp.SqEntries - 1)) * (ulong)RnicSendWqe.Size), bytes);
        var wqe = readable ? RnicSendWqe.Read(bytes) : default;
        bool wellFormed = readable && IsWellFormed(wqe, bytes);
        bool needsResponse = wqe.Opcode is RnicWrOpcode.RdmaRead or RnicWrOpcode.AtomicCmpAndSwp or RnicWrOpcode.AtomicFetchAndAdd;
        if (wellFormed)
        {
            int pendingResponses = 0;
            foreach (var o in qp.Outstanding)
            {
                if (o.NeedsResponse && !o.Done)
                    pendingResponses++;
            }
            if ((wqe.Flags & RnicSendFlags.Fence) != 0 && pendingResponses != 0)
                return false;
            if (needsResponse && pendingResponses >= Math.Max((int)qp.MaxRdAtomic, 1))
                return false;
        }
        int mtu = qp.Mtu;
        ulong length = wqe.TotalLength();
        int packets = !wellFormed || wqe.Opcode is RnicWrOpcode.AtomicCmpAndSwp or RnicWrOpcode.AtomicFetchAndAdd
            ? 1
            : (int)Math.Max(1, (length + (ulong)mtu - 1) / (ulong)mtu);
        var op = new RnicSendOp(index, wqe, qp.NextPsn, packets, mtu);
        qp.NextPsn = RnicPacketHeader.PsnAdd(qp.NextPsn, (uint)packets);
        qp.SqNext = (index + 1) & qp.SqMask;
        qp.Outstanding.Add(op);
        qp.CursorOp = qp.Outstanding.Count - 1;
        qp.CursorPacket = 0;
        if (!wellFormed)
        {
            _model.FailOpLocked(qp, op, RnicWcStatus.LocQpOpErr, RnicEventType.QpFatal);
            return false;
        }
        return true;
    }

    private static bool IsWellFormed(RnicSendWqe wqe, ReadOnlySpan<byte> bytes)
    {
        if (!RnicSendWqe.ReservedIsZero(bytes) || (wqe.Flags & ~RnicSendWqe.DefinedFlags) != 0 ||
            wqe.Opcode > RnicWrOpcode.AtomicFetchAndAdd || wqe.SgeCount > RnicSendWqe.MaxSge)
        {
            return false;
        }
        if (wqe.Opcode is RnicWrOpcode.AtomicCmpAndSwp or RnicWrOpcode.AtomicFetchAndAdd)
            return wqe.SgeCount == 1 && wqe.Sge0.Length == 8;
        ulong total = 0;
        for (int i = 0; i < wqe.SgeCount; i++)
            total += wqe.Sge(i).Length;
        return total <= uint.MaxValue;
    }

    // Builds packet k of op (for a READ, the request for its responses from k on). Outside the QP's lock.
    private DmaResult Build(RnicQp qp, RnicSendOp op, int k, out RnicPacket? packet, out DmaFault fault)
    {
        packet = null;
        fault = default;
        var wqe = op.Wqe;
        uint psn = RnicPacketHeader.PsnAdd(op.FirstPsn, (uint)k);
        ulong offset = (ulong)k * (ulong)op.Mtu;
        switch (wqe.Opcode)
        {
            case RnicWrOpcode.RdmaRead:
                packet = new RnicPacket(new RnicPacketHeader(RnicPacketOpcode.RdmaReadRequest, RnicPacketFlags.AckRequest,
                    qp.DestQpn, psn, qp.Number, wqe.RemoteAddress + offset, wqe.Rkey, (uint)(op.Length - offset)));
                return DmaResult.Ok;
            case RnicWrOpcode.AtomicCmpAndSwp:
            case RnicWrOpcode.AtomicFetchAndAdd:
                bool cas = wqe.Opcode == RnicWrOpcode.AtomicCmpAndSwp;
                packet = new RnicPacket(new RnicPacketHeader(cas ? RnicPacketOpcode.CompareSwap : RnicPacketOpcode.FetchAdd,
                    RnicPacketFlags.AckRequest, qp.DestQpn, psn, qp.Number, wqe.RemoteAddress, wqe.Rkey, 8,
                    SwapAdd: cas ? wqe.Swap : wqe.CompareAdd, Compare: cas ? wqe.CompareAdd : 0));
                return DmaResult.Ok;
        }
        int length = (int)Math.Min((ulong)op.Mtu, op.Length - Math.Min(offset, op.Length));
        var payload = length == 0 ? [] : new byte[length];
        if (length != 0)
        {
            Span<RnicSge> sges = stackalloc RnicSge[RnicSendWqe.MaxSge];
            for (int i = 0; i < wqe.SgeCount; i++)
                sges[i] = wqe.Sge(i);
            var result = _dma.CopySges(qp, sges[..wqe.SgeCount], offset, payload, toMemory: false, out fault);
            if (result != DmaResult.Ok)
                return result;
        }
        packet = new RnicPacket(DataHeader(qp, op, k, length), payload);
        return DmaResult.Ok;
    }

    // The header of data packet k (SEND or WRITE) of op, carrying `length` payload bytes.
    private RnicPacketHeader DataHeader(RnicQp qp, RnicSendOp op, int k, int length)
    {
        var wqe = op.Wqe;
        uint psn = RnicPacketHeader.PsnAdd(op.FirstPsn, (uint)k);
        bool first = k == 0, last = op.IsLastPacket(k);
        bool write = wqe.Opcode is RnicWrOpcode.RdmaWrite or RnicWrOpcode.RdmaWriteWithImm;
        bool imm = wqe.Opcode is RnicWrOpcode.RdmaWriteWithImm or RnicWrOpcode.SendWithImm;
        var opcode = (write, first, last, imm) switch
        {
            (true, true, true, false) => RnicPacketOpcode.RdmaWriteOnly,
            (true, true, true, true) => RnicPacketOpcode.RdmaWriteOnlyWithImm,
            (true, true, false, _) => RnicPacketOpcode.RdmaWriteFirst,
            (true, false, false, _) => RnicPacketOpcode.RdmaWriteMiddle,
            (true, false, true, false) => RnicPacketOpcode.RdmaWriteLast,
            (true, false, true, true) => RnicPacketOpcode.RdmaWriteLastWithImm,
            (false, true, true, false) => RnicPacketOpcode.SendOnly,
            (false, true, true, true) => RnicPacketOpcode.SendOnlyWithImm,
            (false, true, false, _) => RnicPacketOpcode.SendFirst,
            (false, false, false, _) => RnicPacketOpcode.SendMiddle,
            (false, false, true, false) => RnicPacketOpcode.SendLast,
            _ => RnicPacketOpcode.SendLastWithImm,
        };
        var flags = last || (k + 1) % _model.Options.AckRequestInterval == 0 ? RnicPacketFlags.AckRequest : RnicPacketFlags.None;
        if (last && (wqe.Flags & RnicSendFlags.Solicited) != 0)
            flags |= RnicPacketFlags.Solicited;
        return new RnicPacketHeader(opcode, flags, qp.DestQpn, psn, qp.Number,
            write && first ? wqe.RemoteAddress : 0, write && first ? wqe.Rkey : 0, write && first ? (uint)op.Length : 0,
            Imm: last && imm ? wqe.Imm : 0, PayloadLength: (uint)length);
    }
}
