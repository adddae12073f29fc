namespace HmmEmu.Rnic.Model;

/// <summary>A counter that any engine thread bumps.</summary>
internal sealed class RnicCounter
{
    private long _value;

    public long Value => Interlocked.Read(ref _value);

    public void Increment() => Interlocked.Increment(ref _value);

    public void Add(long n) => Interlocked.Add(ref _value, n);
}

/// <summary>The data path's counters.</summary>
internal sealed class RnicCounters
{
    public RnicCounter PacketsSent { get; } = new();

    public RnicCounter Retransmissions { get; } = new();

    public RnicCounter Timeouts { get; } = new();

    public RnicCounter RnrNaksSent { get; } = new();

    public RnicCounter SequenceNaksSent { get; } = new();

    public RnicCounter RequesterFaults { get; } = new();

    public RnicCounter ResponderFaults { get; } = new();

    public RnicCounter Invalidations { get; } = new();

    public RnicCounter Completions { get; } = new();

    public RnicCounter SegmentsSent { get; } = new();

    public RnicModelStats Snapshot() => new(PacketsSent.Value, Retransmissions.Value, Timeouts.Value, RnrNaksSent.Value,
        SequenceNaksSent.Value, RequesterFaults.Value, ResponderFaults.Value, Invalidations.Value, Completions.Value,
        SegmentsSent.Value);
}

/// <summary>What a NIC's data path has done so far.</summary>
/// <param name="PacketsSent">Packets handed to the link (requests, responses, ACKs and NAKs).</param>
/// <param name="Retransmissions">Rewinds of a send queue (a NAK, an RNR NAK, a timeout or a resumed fault).</param>
/// <param name="Timeouts">ACK timeouts that fired.</param>
/// <param name="RnrNaksSent">RNR NAKs the responder sent (no receive WQE, or a fault pending).</param>
/// <param name="SequenceNaksSent">PSN sequence-error NAKs the responder sent.</param>
/// <param name="RequesterFaults">Page faults the requester and completer raised.</param>
/// <param name="ResponderFaults">Page faults the responder raised.</param>
/// <param name="Invalidations">INVALIDATE_MTT commands completed.</param>
/// <param name="Completions">CQEs written.</param>
/// <param name="SegmentsSent">
/// Zero-copy segments the requester built (threaded mode, clean link): runs of data packets counted in
/// <paramref name="PacketsSent"/> one by one but handed over as one object (see docs/rnic.md).
/// </param>
public readonly record struct RnicModelStats(long PacketsSent, long Retransmissions, long Timeouts, long RnrNaksSent,
    long SequenceNaksSent, long RequesterFaults, long ResponderFaults, long Invalidations, long Completions,
    long SegmentsSent = 0);
