using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Engines;
using HmmEmu.Simulation;
using Op = HmmEmu.Rnic.RnicPacketOpcode;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// The responder engine: a channel worker that executes incoming requests in PSN order against local MRs (rkey, PD,
/// right and bound checks; WRITE placement; READ responses; atomics once each; SENDs into receive WQEs) and answers
/// with ACK, NAK or RNR NAK. Duplicates are re-acknowledged, READs and atomics answered again without re-executing an
/// atomic. An ODP miss pauses the responder at that PSN: it raises a responder page fault and answers RNR NAK until
/// RESUME.
/// </summary>
internal sealed class RnicResponder : IEngineWorkHandler<RnicPacket[]>, IDisposable
{
    private readonly RnicModel _model;
    private readonly RnicDma _dma;
    private readonly EngineWorker<RnicPacket[]> _worker;

    public RnicResponder(RnicModel model, Scheduler scheduler)
    {
        _model = model;
        _dma = new RnicDma(model);
        _worker = new EngineWorker<RnicPacket[]>(scheduler, $"rnic{model.Address} responder", this);
    }

    private enum Verdict
    {
        Done,
        Rnr,
        Fault,
        NakInvalid,
        NakAccess,
        NakOperational,
        Drop,
    }

    /// <summary>Queues packets (one or a burst) in arrival order. Never sleeps.</summary>
    public bool Post(RnicPacket[] packets) => _worker.Post(packets);

    /// <summary>Runs <paramref name="packets"/> on the calling thread if the engine is idle (see <see cref="EngineWorker{T}.TryRunInline"/>).</summary>
    public bool TryRunInline(RnicPacket[] packets) => _worker.TryRunInline(packets);

    /// <summary>RESUME of the responder side. Returns false when no responder fault is pending.</summary>
    public bool Resume(RnicQp qp, bool error)
    {
        RnicPacket? nak = null;
        lock (qp.Sync)
        {
            if (!qp.ResponderFault)
                return false;
            qp.ResponderFault = false;
            if (error)
            {
                nak = Ack(qp, qp.ExpectedPsn, RnicAckSyndrome.NakRemoteAccessError);
                _model.EnterErrorLocked(qp, RnicEventType.QpAccessErr, RnicWcStatus.RemAccessErr);
            }
        }
        if (nak is not null)
            _model.Send(nak);
        return true;
    }

    public void Run(RnicPacket[] packets)
    {
        int n = 0;
        try
        {
            for (; n < packets.Length; n++)
            {
                var packet = packets[n];
                try
                {
                    if (packet.Segment is { } segment)
                        HandleSegment(packet, segment);
                    else
                        Handle(packet);
                }
                finally
                {
                    packet.Segment?.Release();
                    _model.PacketProcessed();
                }
            }
        }
        finally
        {
            // Only after an exception: the packets after the one that threw are dropped, their segments released.
            for (int r = n + 1; r < packets.Length; r++)
            {
                packets[r].Segment?.Release();
                _model.PacketProcessed();
            }
        }
    }

    public void Abort(RnicPacket[] packets)
    {
        foreach (var packet in packets)
        {
            packet.Segment?.Release();
            _model.PacketProcessed();
        }
    }

    public void Dispose() => _worker.Dispose();

    private static bool IsSend(Op op) => op <= Op.SendOnlyWithImm;

    private static bool IsWrite(Op op) => op is >= Op.RdmaWriteFirst and <= Op.RdmaWriteOnlyWithImm;

    private static bool IsAtomic(Op op) => op is Op.CompareSwap or Op.FetchAdd;

    private static bool StartsMessage(Op op) =>
        op is Op.SendFirst or Op.SendOnly or Op.SendOnlyWithImm or Op.RdmaWriteFirst or Op.RdmaWriteOnly or Op.RdmaWriteOnlyWithImm;

    private static bool EndsMessage(Op op) =>
        op is Op.SendLast or Op.SendLastWithImm or Op.SendOnly or Op.SendOnlyWithImm or
            Op.RdmaWriteLast or Op.RdmaWriteLastWithImm or Op.RdmaWriteOnly or Op.RdmaWriteOnlyWithImm;

    private static bool HasImm(Op op) =>
        op is Op.SendLastWithImm or Op.SendOnlyWithImm or Op.RdmaWriteLastWithImm or Op.RdmaWriteOnlyWithImm;

    private static RnicPacket Ack(RnicQp qp, uint psn, RnicAckSyndrome syndrome = RnicAckSyndrome.Ack, byte value = 0) =>
        new(new RnicPacketHeader(Op.Acknowledge, RnicPacketFlags.None, qp.DestQpn, psn & RnicPacketHeader.Mask24, qp.Number,
            Syndrome: syndrome, SyndromeValue: value, Msn: qp.Msn));

    private void Handle(RnicPacket packet)
    {
        var h = packet.Header;
        var qp = _model.FindQp(h.DestQpn);
        if (qp is null || h.Opcode > Op.FetchAdd)
            return;
        Interlocked.Increment(ref qp.Busy);
        try
        {
            Execute(qp, packet);
        }
        finally
        {
            Interlocked.Decrement(ref qp.Busy);
        }
    }

    // A zero-copy segment: the WRITE packets that are next in sequence are placed in runs (each run ends on a packet that
    // asks for an ACK), straight from the sender's frames; whatever the fast path does not take (a SEND, the first packet
    // that is not next in sequence, a failed check or DMA, a packet with an immediate) goes, with every packet after it,
    // through the per-packet path as an ordinary packet, which answers it exactly as it would have answered it alone.
    private void HandleSegment(RnicPacket packet, RnicSegment segment)
    {
        var qp = _model.FindQp(packet.Header.DestQpn);
        if (qp is null)
            return;
        Interlocked.Increment(ref qp.Busy);
        try
        {
            int placed = IsWrite(packet.Header.Opcode) ? PlaceWrites(qp, segment) : 0;
            long offset = segment.OffsetOf(placed);
            for (int i = placed; i < segment.Count; i++)
            {
                if (segment.Materialize(i, offset) is not { } single)
                    break;          // unreadable (see Materialize): dropped with the rest, as the wire would lose them
                offset += single.Payload.Length;
                Execute(qp, single);
            }
        }
        finally
        {
            Interlocked.Decrement(ref qp.Busy);
        }
    }

    // The fast path of HandleSegment for WRITE packets. Returns how many packets, from the first, it placed and
    // acknowledged; the state changes per run are exactly those the per-packet path makes for the run's packets in order.
    private int PlaceWrites(RnicQp qp, RnicSegment segment)
    {
        var headers = segment.Headers;
        int i = 0;
        long offset = 0;
        while (i < headers.Length)
        {
            var h = headers[i];
            int j = i;
            while (j < headers.Length - 1 && (headers[j].Flags & RnicPacketFlags.AckRequest) == 0 && !EndsMessage(headers[j].Opcode))
                j++;
            if (HasImm(headers[j].Opcode) && --j < i)
                return i;       // an immediate needs a receive WQE: the per-packet path takes it
            long bytes = 0;
            for (int p = i; p <= j; p++)
                bytes += headers[p].PayloadLength;
            RnicMr? mr;
            ulong address, end;
            uint total;
            long generation;
            lock (qp.Sync)
            {
                if (qp.State is not (RnicQpState.Rtr or RnicQpState.Rts or RnicQpState.Sqd) || qp.Destroyed ||
                    h.SrcQpn != qp.DestQpn || qp.ResponderFault || qp.ExpectedPsn != h.Psn)
                {
                    return i;
                }
                generation = qp.Generation;
                if (WriteTargetLocked(qp, h, out mr, out address, out total, out end) != Verdict.Done || !mr!.Covers(address, (ulong)bytes))
                    return i;
            }
            if (bytes != 0 && _dma.CopyFromSegment(mr, address, segment, offset, bytes, end, out _) != DmaResult.Ok)
                return i;       // the per-packet path meets the fault or error again and answers it
            RnicPacket? reply;
            lock (qp.Sync)
            {
                if (qp.Generation != generation || qp.ExpectedPsn != h.Psn)
                    return i;
                bool last = EndsMessage(headers[j].Opcode);
                qp.WriteMr = last ? null : mr;
                qp.WriteAddress = address + (ulong)bytes;
                qp.WriteLength = total;
                qp.WriteEnd = end;
                reply = Advance(qp, headers[j], 1, last);
            }
            if (reply is not null)
                _model.SendBurst([reply], holdsNoLock: true);
            offset += bytes;
            i = j + 1;
        }
        return i;
    }

    private void Execute(RnicQp qp, RnicPacket packet)
    {
        var h = packet.Header;
        RnicPacket? reply = null;
        long generation;
        bool duplicateRead;
        lock (qp.Sync)
        {
            if (qp.State is not (RnicQpState.Rtr or RnicQpState.Rts or RnicQpState.Sqd) || qp.Destroyed || h.SrcQpn != qp.DestQpn)
                return;
            generation = qp.Generation;
            int d = RnicPacketHeader.PsnDiff(h.Psn, qp.ExpectedPsn);
            duplicateRead = d < 0 && h.Opcode == Op.RdmaReadRequest;
            if (qp.ResponderFault)
            {
                if (d == 0)
                {
                    _model.Counters.RnrNaksSent.Increment();
                    reply = Ack(qp, h.Psn, RnicAckSyndrome.RnrNak, qp.MinRnrTimer);
                }
            }
            else if (d > 0)
            {
                if (!qp.NakSent)
                {
                    qp.NakSent = true;
                    _model.Counters.SequenceNaksSent.Increment();
                    reply = Ack(qp, qp.ExpectedPsn, RnicAckSyndrome.NakPsnSequenceError);
                }
            }
            else if (d < 0)
            {
                if (IsAtomic(h.Opcode))
                {
                    foreach (var (psn, original) in qp.AtomicResources)
                    {
                        if (psn == h.Psn)
                            reply = AtomicAck(qp, h.Psn, original);
                    }
                }
                else if (h.Opcode != Op.RdmaReadRequest)
                {
                    reply = Ack(qp, RnicPacketHeader.PsnAdd(qp.ExpectedPsn, RnicPacketHeader.Mask24));
                }
            }
            // A duplicate READ is answered again (reads are idempotent) without moving the responder's state.
            if ((d != 0 || qp.ResponderFault) && !duplicateRead)
            {
                SendOutside(reply);
                return;
            }
        }
        if (h.Opcode == Op.RdmaReadRequest)
            ExecuteRead(qp, h, generation, duplicateRead);
        else if (IsAtomic(h.Opcode))
            ExecuteAtomic(qp, h, generation);
        else if (IsWrite(h.Opcode) || IsSend(h.Opcode))
            ExecuteMessage(qp, packet, generation);
    }

    private void SendOutside(RnicPacket? reply)
    {
        if (reply is not null)
            _model.Send(reply);
    }

    // SEND and WRITE packets: placement, receive WQEs, completions.
    private void ExecuteMessage(RnicQp qp, RnicPacket packet, long generation)
    {
        var h = packet.Header;
        bool send = IsSend(h.Opcode), first = StartsMessage(h.Opcode), last = EndsMessage(h.Opcode);
        bool needsRecv = send || HasImm(h.Opcode);
        RnicRecvWqe recv = default;
        uint recvIndex = 0;
        ulong recvOffset = 0;
        RnicMr? mr = null;
        ulong address = 0, end = 0;
        uint total = 0;
        Verdict verdict = Verdict.Done;
        lock (qp.Sync)
        {
            if (qp.Generation != generation)
                return;
            if (send)
            {
                if (first)
                {
                    if (qp.RecvWqe is not null)
                        verdict = Verdict.NakInvalid;
                    else if (!TakeRecvLocked(qp, out recv, out recvIndex, ref verdict))
                        verdict = verdict == Verdict.Done ? Verdict.Rnr : verdict;
                }
                else if (qp.RecvWqe is { } current)
                {
                    recv = current;
                    recvIndex = qp.RecvWqeIndex;
                    recvOffset = qp.RecvOffset;
                }
                else
                {
                    verdict = Verdict.NakInvalid;
                }
            }
            else
            {
                verdict = WriteTargetLocked(qp, h, out mr, out address, out total, out end);
                if (verdict == Verdict.Done && mr is not null && !mr.Covers(address, (ulong)packet.Payload.Length))
                    verdict = Verdict.NakInvalid;
                if (verdict == Verdict.Done && last && needsRecv && !TakeRecvLocked(qp, out recv, out recvIndex, ref verdict))
                    verdict = verdict == Verdict.Done ? Verdict.Rnr : verdict;
            }
        }
        DmaFault fault = default;
        bool lengthError = false, recvProtection = false;
        if (verdict == Verdict.Done && packet.Payload.Length != 0)
        {
            DmaResult result;
            if (send)
            {
                if (recvOffset + (ulong)packet.Payload.Length > recv.TotalLength())
                {
                    lengthError = true;
                    result = DmaResult.Ok;
                }
                else
                {
                    Span<RnicSge> sges = stackalloc RnicSge[RnicRecvWqe.MaxSge];
                    for (int i = 0; i < recv.SgeCount; i++)
                        sges[i] = recv.Sge(i);
                    result = _dma.CopySges(qp, sges[..recv.SgeCount], recvOffset, packet.Payload, toMemory: true, out fault);
                }
            }
            else
            {
                result = _dma.Copy(mr!, address, packet.Payload, toMemory: true, end, out fault);
            }
            verdict = result switch
            {
                DmaResult.Fault => Verdict.Fault,
                DmaResult.ProtectionError => send ? Verdict.NakOperational : Verdict.NakAccess,
                _ => Verdict.Done,
            };
            recvProtection = send && result == DmaResult.ProtectionError;
        }
        RnicPacket? reply;
        lock (qp.Sync)
        {
            if (qp.Generation != generation || qp.ExpectedPsn != h.Psn)
                return;
            if (lengthError)
            {
                _model.WriteRecvCqeLocked(qp, recv.WrId, recvIndex, RnicWcStatus.LocLenErr, RnicWcOpcode.Recv, 0, 0, 0);
                qp.RecvWqe = null;
                qp.RqConsumer = (recvIndex + 1) & qp.RqMask;
                verdict = Verdict.NakInvalid;
            }
            if (recvProtection)
            {
                // The receive WQE's own SGEs are bad: it completes with LocProtErr before the QP goes to ERR.
                _model.WriteRecvCqeLocked(qp, recv.WrId, recvIndex, RnicWcStatus.LocProtErr, RnicWcOpcode.Recv, 0, 0, 0);
                qp.RecvWqe = null;
                qp.RqConsumer = (recvIndex + 1) & qp.RqMask;
            }
            if (verdict != Verdict.Done)
            {
                reply = Refuse(qp, h, verdict, fault, RnicFaultAccess.Write);
            }
            else
            {
                int length = packet.Payload.Length;
                if (send)
                {
                    qp.RecvWqe = last ? null : recv;
                    qp.RecvWqeIndex = recvIndex;
                    qp.RecvOffset = recvOffset + (ulong)length;
                    if (last)
                    {
                        var flags = (HasImm(h.Opcode) ? RnicWcFlags.WithImm : RnicWcFlags.None) |
                            ((h.Flags & RnicPacketFlags.Solicited) != 0 ? RnicWcFlags.Solicited : RnicWcFlags.None);
                        qp.RqConsumer = (recvIndex + 1) & qp.RqMask;
                        _model.WriteRecvCqeLocked(qp, recv.WrId, recvIndex, RnicWcStatus.Success, RnicWcOpcode.Recv,
                            (uint)qp.RecvOffset, h.Imm, flags);
                    }
                }
                else
                {
                    qp.WriteMr = last ? null : mr;
                    qp.WriteAddress = address + (ulong)length;
                    qp.WriteLength = total;
                    qp.WriteEnd = end;
                    if (last && needsRecv)
                    {
                        qp.RqConsumer = (recvIndex + 1) & qp.RqMask;
                        var flags = RnicWcFlags.WithImm |
                            ((h.Flags & RnicPacketFlags.Solicited) != 0 ? RnicWcFlags.Solicited : RnicWcFlags.None);
                        _model.WriteRecvCqeLocked(qp, recv.WrId, recvIndex, RnicWcStatus.Success, RnicWcOpcode.RecvRdmaWithImm,
                            total, h.Imm, flags);
                    }
                }
                reply = Advance(qp, h, 1, last);
            }
        }
        SendOutside(reply);
    }

    // Where WRITE packet h lands: from its RETH when it starts the message (rkey, PD, remote-write access and bounds
    // checked: NakAccess if one fails), else where the message's earlier packets left off (NakInvalid if none did).
    // Caller holds qp.Sync.
    private Verdict WriteTargetLocked(RnicQp qp, RnicPacketHeader h, out RnicMr? mr, out ulong address, out uint total,
        out ulong end)
    {
        if (StartsMessage(h.Opcode))
        {
            mr = _model.FindMr(h.Rkey);
            (address, total) = (h.VirtualAddress, h.DmaLength);
            end = address + total;
            return mr is null || mr.Pd != qp.Pd || (mr.Access & RnicAccessFlags.RemoteWrite) == 0 ||
                (qp.RemoteAccess & RnicAccessFlags.RemoteWrite) == 0 || !mr.Covers(h.VirtualAddress, h.DmaLength)
                ? Verdict.NakAccess
                : Verdict.Done;
        }
        mr = qp.WriteMr;
        (address, total, end) = (qp.WriteAddress, qp.WriteLength, qp.WriteEnd);
        return mr is null ? Verdict.NakInvalid : Verdict.Done;
    }

    // Reads the receive WQE at the RQ consumer. False with verdict Done means "none posted" (RNR).
    private bool TakeRecvLocked(RnicQp qp, out RnicRecvWqe recv, out uint index, ref Verdict verdict)
    {
        recv = default;
        index = qp.RqConsumer;
        if (qp.RqConsumer == qp.RqProducer)
            return false;
        Span<byte> bytes = stackalloc byte[RnicRecvWqe.Size];
        if (!_model.Memory.TryRead(qp.RqAddress + ((index & (qp.RqEntries - 1)) * (ulong)RnicRecvWqe.Size), bytes) ||
            !RnicRecvWqe.ReservedIsZero(bytes) || (recv = RnicRecvWqe.Read(bytes)).SgeCount > RnicRecvWqe.MaxSge)
        {
            _model.WriteRecvCqeLocked(qp, recv.WrId, index, RnicWcStatus.LocQpOpErr, RnicWcOpcode.Recv, 0, 0, 0);
            qp.RqConsumer = (index + 1) & qp.RqMask;
            verdict = Verdict.NakOperational;
            return false;
        }
        return true;
    }

    private void ExecuteRead(RnicQp qp, RnicPacketHeader h, long generation, bool duplicate)
    {
        var mr = _model.FindMr(h.Rkey);
        int mtu = RnicPacketHeader.MaxPayload(ReadMtu(qp));
        Verdict verdict = Verdict.Done;
        if (mr is null || mr.Pd != qp.Pd || (mr.Access & RnicAccessFlags.RemoteRead) == 0 ||
            (qp.RemoteAccess & RnicAccessFlags.RemoteRead) == 0 || !mr.Covers(h.VirtualAddress, h.DmaLength))
        {
            verdict = Verdict.NakAccess;
        }
        int packets = (int)Math.Max(1, (h.DmaLength + (ulong)mtu - 1) / (ulong)mtu);
        var responses = new List<RnicPacket>(verdict == Verdict.Done ? packets : 0);
        DmaFault fault = default;
        for (int i = 0; verdict == Verdict.Done && i < packets; i++)
        {
            ulong offset = (ulong)i * (ulong)mtu;
            int length = (int)Math.Min((ulong)mtu, h.DmaLength - Math.Min(offset, h.DmaLength));
            var payload = length == 0 ? [] : new byte[length];
            if (length != 0)
            {
                var result = _dma.Copy(mr!, h.VirtualAddress + offset, payload, toMemory: false, h.VirtualAddress + h.DmaLength, out fault);
                if (result != DmaResult.Ok)
                {
                    verdict = result == DmaResult.Fault ? Verdict.Fault : Verdict.NakAccess;
                    break;
                }
            }
            var opcode = packets == 1 ? Op.RdmaReadResponseOnly
                : i == 0 ? Op.RdmaReadResponseFirst
                : i == packets - 1 ? Op.RdmaReadResponseLast
                : Op.RdmaReadResponseMiddle;
            responses.Add(new RnicPacket(new RnicPacketHeader(opcode, RnicPacketFlags.None, h.SrcQpn,
                RnicPacketHeader.PsnAdd(h.Psn, (uint)i), qp.Number, PayloadLength: (uint)length), payload));
        }
        lock (qp.Sync)
        {
            if (qp.Generation != generation)
                return;
            if (!duplicate)
            {
                if (qp.ExpectedPsn != h.Psn)
                    return;
                if (verdict != Verdict.Done)
                {
                    SendOutside(Refuse(qp, h, verdict, fault, RnicFaultAccess.Read));
                    return;
                }
                qp.ExpectedPsn = RnicPacketHeader.PsnAdd(h.Psn, (uint)packets);
                qp.NakSent = false;
                qp.Msn = (qp.Msn + 1) & RnicPacketHeader.Mask24;
            }
            else if (verdict != Verdict.Done)
            {
                // A duplicate that cannot be answered now is dropped; the requester asks again. If a page of it is no
                // longer mapped (the MR was invalidated since the first answer), the driver must hear of it, or no
                // retry can ever be answered (the requester's retries run out: RETRY_EXC_ERR).
                if (verdict == Verdict.Fault && !qp.ResponderFault)
                    RaiseResponderFaultLocked(qp, fault, RnicFaultAccess.Read);
                return;
            }
        }
        _model.Scheduler.Charge(_model.Options.PacketNs * (ulong)responses.Count);
        _model.SendBurst(responses);
    }

    private static RnicMtu ReadMtu(RnicQp qp)
    {
        lock (qp.Sync)
            return qp.PathMtu;
    }

    private void ExecuteAtomic(RnicQp qp, RnicPacketHeader h, long generation)
    {
        var mr = _model.FindMr(h.Rkey);
        Verdict verdict = Verdict.Done;
        if (mr is null || mr.Pd != qp.Pd || (mr.Access & RnicAccessFlags.RemoteAtomic) == 0 ||
            (qp.RemoteAccess & RnicAccessFlags.RemoteAtomic) == 0 || !mr.Covers(h.VirtualAddress, 8))
        {
            verdict = Verdict.NakAccess;
        }
        else if ((h.VirtualAddress & 7) != 0)
        {
            verdict = Verdict.NakInvalid;
        }
        ulong original = 0;
        DmaFault fault = default;
        if (verdict == Verdict.Done)
        {
            var result = _dma.Atomic(mr!, h.VirtualAddress, h.Opcode == Op.CompareSwap, h.Compare, h.SwapAdd, out original, out fault);
            verdict = result switch
            {
                DmaResult.Fault => Verdict.Fault,
                DmaResult.ProtectionError => Verdict.NakAccess,
                _ => Verdict.Done,
            };
        }
        RnicPacket? reply;
        lock (qp.Sync)
        {
            if (qp.Generation != generation || qp.ExpectedPsn != h.Psn)
                return;
            if (verdict != Verdict.Done)
            {
                reply = Refuse(qp, h, verdict, fault, RnicFaultAccess.Atomic);
            }
            else
            {
                qp.AtomicResources.Enqueue((h.Psn, original));
                while (qp.AtomicResources.Count > Math.Max((int)qp.MaxDestRdAtomic, 1))
                    qp.AtomicResources.Dequeue();
                Advance(qp, h, 1, endsMessage: true, ack: false);
                reply = AtomicAck(qp, h.Psn, original);
            }
        }
        SendOutside(reply);
    }

    private static RnicPacket AtomicAck(RnicQp qp, uint psn, ulong original) =>
        new(new RnicPacketHeader(Op.AtomicAcknowledge, RnicPacketFlags.None, qp.DestQpn, psn, qp.Number, Msn: qp.Msn,
            SwapAdd: original));

    // The packet executed: the expected PSN moves on; an ACK goes out when the packet asks for one (the requester asks
    // on the last packet of every message and every AckRequestInterval packets), so ACKs are coalesced.
    private RnicPacket? Advance(RnicQp qp, RnicPacketHeader h, int psns, bool endsMessage, bool ack = true)
    {
        qp.ExpectedPsn = RnicPacketHeader.PsnAdd(h.Psn, (uint)psns);
        qp.NakSent = false;
        if (endsMessage)
            qp.Msn = (qp.Msn + 1) & RnicPacketHeader.Mask24;
        if (!ack)
            return null;
        if ((h.Flags & RnicPacketFlags.AckRequest) != 0)
            return Ack(qp, h.Psn);
        return null;
    }

    // Caller holds qp.Sync. Marks the responder faulted (new requests get RNR NAKs until RESUME) and tells the driver.
    private void RaiseResponderFaultLocked(RnicQp qp, DmaFault fault, RnicFaultAccess access)
    {
        qp.ResponderFault = true;
        qp.ResponderFaultKey = fault.Key;
        _model.Counters.ResponderFaults.Increment();
        _model.RaiseEvent(RnicEqe.ResponderFault(qp.Number, fault.Key, fault.Address, fault.Length,
            fault.Access == RnicFaultAccess.None ? access : fault.Access, 0));
    }

    // A packet that cannot execute: RNR NAK (no receive WQE), a fault (RNR NAK until RESUME) or a NAK that ends the QP.
    private RnicPacket? Refuse(RnicQp qp, RnicPacketHeader h, Verdict verdict, DmaFault fault, RnicFaultAccess access)
    {
        switch (verdict)
        {
            case Verdict.Rnr:
                _model.Counters.RnrNaksSent.Increment();
                return Ack(qp, h.Psn, RnicAckSyndrome.RnrNak, qp.MinRnrTimer);
            case Verdict.Fault:
                RaiseResponderFaultLocked(qp, fault, access);
                _model.Counters.RnrNaksSent.Increment();
                return Ack(qp, h.Psn, RnicAckSyndrome.RnrNak, qp.MinRnrTimer);
            case Verdict.NakInvalid:
            {
                var nak = Ack(qp, h.Psn, RnicAckSyndrome.NakInvalidRequest);
                _model.EnterErrorLocked(qp, RnicEventType.QpReqErr, RnicWcStatus.RemInvReqErr);
                return nak;
            }
            case Verdict.NakAccess:
            {
                var nak = Ack(qp, h.Psn, RnicAckSyndrome.NakRemoteAccessError);
                _model.EnterErrorLocked(qp, RnicEventType.QpAccessErr, RnicWcStatus.RemAccessErr);
                return nak;
            }
            case Verdict.NakOperational:
            {
                var nak = Ack(qp, h.Psn, RnicAckSyndrome.NakRemoteOperationalError);
                _model.EnterErrorLocked(qp, RnicEventType.QpFatal, RnicWcStatus.RemOpErr);
                return nak;
            }
            default:
                return null;
        }
    }
}
