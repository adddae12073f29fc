namespace HmmEmu.Rnic.Model;

/// <summary>
/// A reliable-connected queue pair: its rings, attributes and state, the requester's send state (PSNs, outstanding
/// WQEs, retry budgets, a pending fault) and the responder's receive state (expected PSN, message in progress, atomic
/// resources, a pending fault).
/// </summary>
/// <remarks>
/// Every mutable field is guarded by <see cref="Sync"/>. Nobody sleeps, charges time or translates while holding it;
/// the engines snapshot what they need, move data outside, and commit under the lock again, checking
/// <see cref="Generation"/> (bumped by RESET, ERR and DESTROY) and <see cref="SendEpoch"/> (bumped by every rewind)
/// so that work started for an older incarnation or position is discarded. Lock order: QP, then CQ, then EQ.
/// </remarks>
internal sealed class RnicQp(uint number, uint context, RnicPd pd, RnicCq sendCq, RnicCq recvCq,
    ulong sqAddress, uint sqEntries, ulong rqAddress, uint rqEntries)
{
    public Lock Sync { get; } = new();

    public uint Number { get; } = number;

    public uint Context { get; } = context;

    public RnicPd Pd { get; } = pd;

    public RnicCq SendCq { get; } = sendCq;

    public RnicCq RecvCq { get; } = recvCq;

    public ulong SqAddress { get; } = sqAddress;

    public uint SqEntries { get; } = sqEntries;

    public ulong RqAddress { get; } = rqAddress;

    public uint RqEntries { get; } = rqEntries;

    public uint SqMask => (2 * SqEntries) - 1;

    public uint RqMask => (2 * RqEntries) - 1;

    // ---- state and attributes ---------------------------------------------------------------------------------------

    public RnicQpState State { get; set; } = RnicQpState.Reset;

    /// <summary>Bumped whenever the QP leaves a working state (RESET, ERR, destroy): in-flight engine work for it is void.</summary>
    public long Generation { get; set; }

    public bool Destroyed { get; set; }

    /// <summary>Engine passes working on this QP outside its lock; DESTROY_QP waits for 0.</summary>
    public int Busy;

    public RnicAccessFlags RemoteAccess { get; set; }

    public RnicMtu PathMtu { get; set; } = RnicMtu.Mtu4096;

    public uint DestQpn { get; set; }

    public uint Av { get; set; }

    public byte Timeout { get; set; }

    public byte RetryCount { get; set; }

    public byte RnrRetry { get; set; }

    public byte MinRnrTimer { get; set; }

    public byte MaxRdAtomic { get; set; }

    public byte MaxDestRdAtomic { get; set; }

    public bool SqdNotify { get; set; }

    public uint InitialSqPsn { get; set; }

    public uint InitialRqPsn { get; set; }

    public int Mtu => RnicPacketHeader.MaxPayload(PathMtu);

    // ---- send queue (requester, completer) --------------------------------------------------------------------------

    /// <summary>The driver's SQ producer (SQ_DB).</summary>
    public uint SqProducer { get; set; }

    /// <summary>The next WQE the requester fetches.</summary>
    public uint SqNext { get; set; }

    /// <summary>WQEs before this one are retired (their CQEs written or not needed).</summary>
    public uint SqConsumer { get; set; }

    /// <summary>Started, not yet retired, in SQ order.</summary>
    public List<RnicSendOp> Outstanding { get; } = [];

    /// <summary>The requester's position: the op (index into <see cref="Outstanding"/>) and its next packet to send.</summary>
    public int CursorOp { get; set; }

    public int CursorPacket { get; set; }

    /// <summary>The next PSN a new message gets.</summary>
    public uint NextPsn { get; set; }

    /// <summary>PSNs before this one are acknowledged.</summary>
    public uint AckedPsn { get; set; }

    /// <summary>Bumped by every rewind and by every state change: a packet built under an older epoch is not sent.</summary>
    public long SendEpoch { get; set; }

    public int RetriesLeft { get; set; }

    public int RnrRetriesLeft { get; set; }

    /// <summary>
    /// Virtual time at which the ACK timer expires; 0 when not armed. It runs only while a packet that asked for an
    /// ACK (<see cref="LastAckRequestPsn"/>) is unacknowledged: packets in the middle of a burst are acknowledged by
    /// the ACK of a later one, so a requester still sending is never timed out.
    /// </summary>
    public ulong AckDeadline { get; set; }

    /// <summary>The PSN of the last packet sent with AckRequest (valid once <see cref="AckRequested"/>).</summary>
    public uint LastAckRequestPsn { get; set; }

    /// <summary>Whether a packet with AckRequest was sent since the QP entered RTS.</summary>
    public bool AckRequested { get; set; }

    /// <summary>Whether a packet that asked for an ACK is still unacknowledged.</summary>
    public bool AckOwedLocked => AckRequested && RnicPacketHeader.PsnDiff(LastAckRequestPsn, AckedPsn) >= 0;

    /// <summary>Virtual time until which an RNR NAK holds the requester; 0 when not waiting.</summary>
    public ulong RnrUntil { get; set; }

    /// <summary>A requester page fault is pending (until RESUME).</summary>
    public bool RequesterFault { get; set; }

    /// <summary>The SQ index of the WQE whose fault is pending.</summary>
    public uint RequesterFaultWqe { get; set; }

    /// <summary>The lkey of the pending requester fault.</summary>
    public uint RequesterFaultKey { get; set; }

    /// <summary>The key (rkey or receive lkey) of the pending responder fault.</summary>
    public uint ResponderFaultKey { get; set; }

    // ---- receive queue (responder) -----------------------------------------------------------------------------------

    public uint RqProducer { get; set; }

    public uint RqConsumer { get; set; }

    /// <summary>The PSN the responder expects next.</summary>
    public uint ExpectedPsn { get; set; }

    /// <summary>Messages the responder completed (the AETH MSN).</summary>
    public uint Msn { get; set; }

    /// <summary>A sequence-error NAK was sent for the current gap.</summary>
    public bool NakSent { get; set; }

    /// <summary>The responder's fault is pending (until RESUME): the PSN it stopped at.</summary>
    public bool ResponderFault { get; set; }

    /// <summary>A SEND in progress: the receive WQE it lands in and the bytes placed so far.</summary>
    public RnicRecvWqe? RecvWqe { get; set; }

    public uint RecvWqeIndex { get; set; }

    public ulong RecvOffset { get; set; }

    /// <summary>A WRITE in progress: its MR, the next iova and the whole DMA length.</summary>
    public RnicMr? WriteMr { get; set; }

    public ulong WriteAddress { get; set; }

    public uint WriteLength { get; set; }

    /// <summary>The first iova after the WRITE in progress (a fault reports the range up to it).</summary>
    public ulong WriteEnd { get; set; }

    /// <summary>Executed atomics by PSN, so that a duplicate is answered again and never re-executed.</summary>
    public Queue<(uint Psn, ulong Original)> AtomicResources { get; } = new();

    /// <summary>The responder has executed packets it has not acknowledged yet.</summary>
    public bool AckOwed { get; set; }

    /// <summary>Resets every requester and responder field for a QP entering RESET (or created).</summary>
    public void ClearLocked()
    {
        SqProducer = SqNext = SqConsumer = 0;
        RqProducer = RqConsumer = 0;
        Outstanding.Clear();
        CursorOp = CursorPacket = 0;
        AckDeadline = RnrUntil = 0;
        AckRequested = false;
        RequesterFault = ResponderFault = false;
        RecvWqe = null;
        RecvOffset = 0;
        WriteMr = null;
        AtomicResources.Clear();
        NakSent = false;
        AckOwed = false;
        Msn = 0;
        SendEpoch++;
    }

    /// <summary>
    /// Whether the QP's send side may send: in RTS, and in SQD for the WQEs it already started (the requester fetches new
    /// ones only in RTS). Not while a fault or an RNR wait holds it.
    /// </summary>
    public bool CanSendLocked(ulong now) =>
        State is RnicQpState.Rts or RnicQpState.Sqd && !Destroyed && !RequesterFault && (RnrUntil == 0 || now >= RnrUntil);

    /// <summary>Moves the cursor back to <paramref name="psn"/> (the first PSN to send again). Returns false if no op owns it.</summary>
    public bool RewindLocked(uint psn)
    {
        for (int i = 0; i < Outstanding.Count; i++)
        {
            var op = Outstanding[i];
            int k = op.OffsetOf(psn);
            if (k < 0)
                continue;
            if (i > CursorOp || (i == CursorOp && k >= CursorPacket))
                return true;        // not sent yet: nothing to rewind
            CursorOp = i;
            CursorPacket = op.NeedsResponse ? op.Placed : k;
            SendEpoch++;
            return true;
        }
        return false;
    }

    public override string ToString() => $"QP {Number} {State}";
}
