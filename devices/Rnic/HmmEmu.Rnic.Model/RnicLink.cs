using Debug = System.Diagnostics.Debug;
using HmmEmu.Hardware.Engines;
using HmmEmu.Simulation;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// The simulated wire between two NIC ports: a full-duplex link with a line rate, a latency and seeded fault
/// injection (loss, duplication, reordering). Each direction has its own wire and its own delivery worker, a daemon
/// <see cref="EngineWorker{T}"/> that hands every packet to the far port at its arrival time.
/// </summary>
/// <remarks>
/// <para>
/// Timing: a packet departs when its last byte is on the wire, at max(now, the time the direction's wire falls
/// free) plus its serialization time ceil(<see cref="RnicPacket.WireBytes"/> / <see cref="RnicLinkOptions.BytesPerNs"/>),
/// and arrives <see cref="RnicLinkOptions.LatencyNs"/> later. Packets pipeline: back-to-back packets are limited by
/// the line rate, not by the latency. Without faults, each direction delivers in send order.
/// </para>
/// <para>
/// Determinism: every random decision is taken in <see cref="Send"/>, under <c>_lock</c>, from the direction's own
/// stream, in the direction's send order; nothing a worker does draws from it. In deterministic mode the same seed
/// therefore gives the same losses, copies, delays and delivery times.
/// </para>
/// <para>
/// Locking: <c>_lock</c> guards the send side (wire free time, sequence numbers, random streams, fault knobs, the
/// disposed flag). Each direction's queue of held packets belongs to its worker thread alone. Counters are
/// atomics. No lock is held while a port's <see cref="IRnicPort.Receive"/> runs or while a worker sleeps.
/// </para>
/// </remarks>
public sealed class RnicLink : IDisposable
{
    private static readonly TraceEventType s_lossEvent = new("rnic", "link_loss", "from", "to", "psn");
    private static readonly TraceEventType s_duplicateEvent = new("rnic", "link_duplicate", "from", "to", "psn");
    private static readonly TraceEventType s_reorderEvent = new("rnic", "link_reorder", "from", "to", "psn");

    private readonly Scheduler _scheduler;
    private readonly Lock _lock = new();
    private readonly Direction _aToB;
    private readonly Direction _bToA;
    private double _loss;                // under _lock
    private double _duplicate;           // under _lock
    private double _reorder;             // under _lock
    private bool _disposed;              // written under _lock; workers read it atomically
    private int _inFlight;
    private Action[] _quietCallbacks = [];
    private long _sent;
    private long _delivered;
    private long _dropped;
    private long _duplicated;
    private long _reordered;
    private long _bytesDelivered;

    /// <summary>
    /// Cables <paramref name="a"/> to <paramref name="b"/> and starts the two delivery workers ("rnic link A-&gt;B"
    /// and "rnic link B-&gt;A"). The random stream is <c>rnic.link.{A}-{B}</c>, forked once per direction.
    /// </summary>
    /// <exception cref="ArgumentException">Both ports have the same address.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (see <see cref="RnicLinkOptions.Validate"/>).</exception>
    public RnicLink(Scheduler scheduler, IRnicPort a, IRnicPort b, RnicLinkOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        options ??= RnicLinkOptions.Default;
        options.Validate();
        if (a.Address == b.Address)
        {
            throw new ArgumentException(
                $"Both ends of the link have port address {a.Address}; a link joins two different ports. " +
                "Give each NIC its own PORT_ADDRESS before cabling them.", nameof(b));
        }
        _scheduler = scheduler;
        PortA = a;
        PortB = b;
        Options = options;
        _loss = options.LossProbability;
        _duplicate = options.DuplicateProbability;
        _reorder = options.ReorderProbability;
        var random = scheduler.CreateRandom($"rnic.link.{a.Address}-{b.Address}");
        _aToB = new Direction(this, a, b, random.Fork($"{a.Address}->{b.Address}"));
        try
        {
            _bToA = new Direction(this, b, a, random.Fork($"{b.Address}->{a.Address}"));
        }
        catch
        {
            _aToB.Worker.Dispose();
            throw;
        }
    }

    /// <summary>The options the link was created with (the fault knobs may since have changed, see <see cref="SetFaults"/>).</summary>
    public RnicLinkOptions Options { get; }

    /// <summary>The first port.</summary>
    public IRnicPort PortA { get; }

    /// <summary>The second port.</summary>
    public IRnicPort PortB { get; }

    /// <summary>Packets (each duplicate copy counted) accepted by <see cref="Send"/> and not yet delivered or dropped.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>
    /// Whether nothing is on the wire and neither port holds received packets it has not processed: a packet not yet
    /// answered is then really lost. Exact in deterministic mode; a snapshot of moving counters in threaded mode.
    /// </summary>
    public bool IsQuiet =>
        // InFlight first: a packet leaves it only after the port has taken it into its backlog.
        InFlight == 0 && PortA.ReceiveBacklog == 0 && PortB.ReceiveBacklog == 0;

    /// <summary>A snapshot of the counters.</summary>
    public RnicLinkStats Stats => new(
        Interlocked.Read(ref _sent),
        Interlocked.Read(ref _delivered),
        Interlocked.Read(ref _dropped),
        Interlocked.Read(ref _duplicated),
        Interlocked.Read(ref _reordered),
        Interlocked.Read(ref _bytesDelivered));

    /// <summary>
    /// Puts <paramref name="packet"/> on the wire from <paramref name="from"/> to the other port, which receives it on
    /// the link's worker at its arrival time, unless the link loses it. After <see cref="Dispose"/> the packet is
    /// dropped silently. Never sleeps and never throws for packet content: callable from any simulated thread and
    /// from interrupt context. The packet must not change afterwards.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="from"/> is not one of the link's two ports.</exception>
    public void Send(IRnicPort from, RnicPacket packet)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(packet);
        if (packet.Segment is { } segment)
        {
            // Only the direct hand-over carries segments: here it goes as the packets it stands for.
            foreach (var p in segment.Expand())
                Send(from, p);
            return;
        }
        Direction dir;
        if (ReferenceEquals(from, PortA))
            dir = _aToB;
        else if (ReferenceEquals(from, PortB))
            dir = _bToA;
        else
        {
            throw new ArgumentException(
                $"Port {from.Address} sent on the link between ports {PortA.Address} and {PortB.Address}, which it is " +
                "not cabled to. Send through the link the port was attached to, passing that port object itself.",
                nameof(from));
        }

        ulong now = _scheduler.Clock.Now;
        ulong wireNs = ((ulong)packet.WireBytes + Options.BytesPerNs - 1) / Options.BytesPerNs;
        bool lost = false, duplicated = false, reordered = false, direct = false;
        Interlocked.Increment(ref _sent);
        lock (_lock)
        {
            if (_disposed)
            {
                Interlocked.Increment(ref _dropped);
                return;
            }
            ulong departure = Math.Max(now, dir.WireFreeAt) + wireNs;
            dir.WireFreeAt = departure;             // a lost packet held the wire too: it is lost beyond it
            if (_scheduler.Mode == SchedulerMode.Threaded && _loss == 0 && _duplicate == 0 && _reorder == 0 &&
                dir.Worker.Outstanding == 0)
            {
                // Threaded mode, a clean link and nothing queued this way: hand the packet over on the sender's thread.
                // Each thread keeps its own clock there, so the worker's sleep until the arrival time would only cost a
                // thread wake-up per packet; the order per direction is kept, since nothing is queued before it.
                Interlocked.Increment(ref _inFlight);
                direct = true;
            }
            else if (!(lost = dir.Random.Chance(_loss)))
            {
                duplicated = dir.Random.Chance(_duplicate);
                reordered = dir.Random.Chance(_reorder);
                ulong arrival = departure + Options.LatencyNs + (reordered ? Options.ReorderDelayNs : 0);
                LaunchLocked(dir, new Flight(packet, arrival, dir.NextSeq++));
                if (duplicated)
                {
                    // The copy follows the original on the wire and is never itself delayed.
                    departure += wireNs;
                    dir.WireFreeAt = departure;
                    LaunchLocked(dir, new Flight(packet, departure + Options.LatencyNs, dir.NextSeq++));
                }
            }
        }

        if (direct)
        {
            Deliver(dir.To, packet);
            return;
        }
        if (lost)
        {
            Interlocked.Increment(ref _dropped);
            _scheduler.Trace.Record(s_lossEvent, dir.From.Address, dir.To.Address, packet.Header.Psn);
            return;
        }
        if (duplicated)
        {
            Interlocked.Increment(ref _duplicated);
            _scheduler.Trace.Record(s_duplicateEvent, dir.From.Address, dir.To.Address, packet.Header.Psn);
        }
        if (reordered)
        {
            Interlocked.Increment(ref _reordered);
            _scheduler.Trace.Record(s_reorderEvent, dir.From.Address, dir.To.Address, packet.Header.Psn);
        }
    }

    /// <summary>
    /// Sends <paramref name="packets"/> from <paramref name="from"/>, in order, as <see cref="Send"/> would one by one.
    /// In threaded mode on a clean link with nothing queued that way, the whole burst is handed to the other port in
    /// one call, so its engines wake once per burst instead of once per packet. Never sleeps.
    /// </summary>
    public void SendBurst(IRnicPort from, IReadOnlyList<RnicPacket> packets) => SendBurst(from, packets, allowInline: false);

    /// <summary>
    /// <see cref="SendBurst(IRnicPort, IReadOnlyList{RnicPacket})"/>; with <paramref name="allowInline"/> (the sender
    /// holds no lock) a direct hand-over to an <see cref="RnicModel"/> lets its idle engines handle the burst on the
    /// sender's thread (see <see cref="EngineWorker{T}.TryRunInline"/>).
    /// </summary>
    internal void SendBurst(IRnicPort from, IReadOnlyList<RnicPacket> packets, bool allowInline)
    {
        ArgumentNullException.ThrowIfNull(packets);
        if (packets.Count == 0)
            return;
        var dir = ReferenceEquals(from, PortA) ? _aToB : ReferenceEquals(from, PortB) ? _bToA : null;
        bool direct = false;
        if (dir is not null && _scheduler.Mode == SchedulerMode.Threaded)
        {
            ulong now = _scheduler.Clock.Now;
            lock (_lock)
            {
                if (!_disposed && _loss == 0 && _duplicate == 0 && _reorder == 0 && dir.Worker.Outstanding == 0)
                {
                    foreach (var packet in packets)
                    {
                        ulong wireNs = ((ulong)packet.WireBytes + Options.BytesPerNs - 1) / Options.BytesPerNs;
                        dir.WireFreeAt = Math.Max(now, dir.WireFreeAt) + wireNs;
                    }
                    Interlocked.Add(ref _inFlight, packets.Count);
                    Interlocked.Add(ref _sent, packets.Count);
                    direct = true;
                }
            }
        }
        if (!direct)
        {
            foreach (var packet in packets)
                Send(from, packet);
            return;
        }
        long bytes = 0, count = 0;
        foreach (var packet in packets)
        {
            bytes += packet.WireBytes;
            count += packet.PacketCount;
        }
        if (count != packets.Count)
            Interlocked.Add(ref _sent, count - packets.Count);
        try
        {
            if (allowInline && dir!.To is RnicModel model)
                model.ReceiveBurst(packets, inline: true);
            else
                dir!.To.ReceiveBurst(packets);
            Interlocked.Add(ref _delivered, count);
            Interlocked.Add(ref _bytesDelivered, bytes);
        }
        finally
        {
            if (Interlocked.Add(ref _inFlight, -packets.Count) == 0)
                NotifyIfQuiet();
        }
    }

    /// <summary>
    /// Whether a burst from <paramref name="from"/> may carry zero-copy segments (<see cref="RnicSegment"/>): threaded
    /// mode, a clean link (no loss, duplication or reordering, so a burst is handed over directly whenever nothing is
    /// queued that way, and expanded into packets otherwise), and a far port that is an <see cref="RnicModel"/>, which
    /// knows how to consume one. Any thread; never sleeps.
    /// </summary>
    internal bool CarriesSegments(IRnicPort from)
    {
        if (_scheduler.Mode != SchedulerMode.Threaded || IsDisposing)
            return false;
        var dir = ReferenceEquals(from, PortA) ? _aToB : ReferenceEquals(from, PortB) ? _bToA : null;
        lock (_lock)
            return dir?.To is RnicModel && _loss == 0 && _duplicate == 0 && _reorder == 0;
    }

    /// <summary>
    /// Changes the fault probabilities for packets sent from now on, in both directions (for example to make the link
    /// lossy in the middle of a run). Each must be within [0, 1]. Never sleeps.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A probability is outside [0, 1] or NaN.</exception>
    public void SetFaults(double loss, double duplicate, double reorder)
    {
        RnicLinkOptions.ValidateProbability(nameof(loss), loss, $"{nameof(SetFaults)}({nameof(loss)})");
        RnicLinkOptions.ValidateProbability(nameof(duplicate), duplicate, $"{nameof(SetFaults)}({nameof(duplicate)})");
        RnicLinkOptions.ValidateProbability(nameof(reorder), reorder, $"{nameof(SetFaults)}({nameof(reorder)})");
        lock (_lock)
        {
            _loss = loss;
            _duplicate = duplicate;
            _reorder = reorder;
        }
    }

    /// <summary>
    /// Unplugs the link: stops both workers, dropping every packet still on the wire (counted in
    /// <see cref="RnicLinkStats.Dropped"/>, so <see cref="InFlight"/> returns to 0). Later sends are dropped. May sleep:
    /// from a host thread in deterministic mode it runs the simulation until the workers have exited, so call it
    /// outside any <see cref="Scheduler.Run(Action?)"/> on another host thread, or from a simulated thread.
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            Volatile.Write(ref _disposed, true);
        }
        _aToB.Worker.RequestStop(WorkerStopMode.Abort);
        _bToA.Worker.RequestStop(WorkerStopMode.Abort);
        _aToB.Worker.Dispose();
        _bToA.Worker.Dispose();
        _aToB.DropLeftovers();
        _bToA.DropLeftovers();
    }

    /// <summary>Whether <see cref="Dispose"/> has begun. Any thread.</summary>
    private bool IsDisposing => Volatile.Read(ref _disposed);

    /// <summary>Counts <paramref name="flight"/> in flight and hands it to the direction's worker. Caller holds <c>_lock</c>.</summary>
    private void LaunchLocked(Direction dir, Flight flight)
    {
        Debug.Assert(_lock.IsHeldByCurrentThread);
        Interlocked.Increment(ref _inFlight);
        // Posting under the lock keeps each worker's channel in sequence order when several threads send.
        if (!dir.Worker.Post(flight))
            DropOne();                       // cannot happen: the workers stop only after _disposed is set
    }

    /// <summary>
    /// The earliest arrival time any packet not yet sent in <paramref name="dir"/> can have, seen at
    /// <paramref name="now"/>: it departs no earlier than the wire falls free, holds the wire at least 1 ns (a header
    /// is 64 bytes), then travels the latency. A worker may sleep until then without missing a newcomer.
    /// </summary>
    private ulong EarliestNextArrival(Direction dir, ulong now)
    {
        lock (_lock)
            return Math.Max(now, dir.WireFreeAt) + 1 + Options.LatencyNs;
    }

    /// <summary>
    /// Registers <paramref name="callback"/> to run whenever the link may have become quiet (see <see cref="IsQuiet"/>):
    /// when the last packet in flight was delivered or dropped, or when a port reports its backlog empty through
    /// <see cref="NotifyIfQuiet"/>. It runs on the thread that made the link quiet and must not sleep. A NIC's retry
    /// timer uses it: in threaded mode an ACK timeout is decided by a quiet link, not by the clock.
    /// </summary>
    public void OnQuiet(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        lock (_lock)
            _quietCallbacks = [.. _quietCallbacks, callback];
    }

    /// <summary>Runs the <see cref="OnQuiet"/> callbacks if the link is quiet now. Never sleeps.</summary>
    public void NotifyIfQuiet()
    {
        if (!IsQuiet)
            return;
        foreach (var callback in Volatile.Read(ref _quietCallbacks))
            callback();
    }

    /// <summary>Hands <paramref name="packet"/> to <paramref name="to"/>. Runs on a worker thread; no lock held.</summary>
    private void Deliver(IRnicPort to, RnicPacket packet)
    {
        to.Receive(packet);
        Interlocked.Increment(ref _delivered);
        Interlocked.Add(ref _bytesDelivered, packet.WireBytes);
        // Only now, so that the packet is always either in flight or in the port's backlog (see IsQuiet).
        if (Interlocked.Decrement(ref _inFlight) == 0)
            NotifyIfQuiet();
    }

    /// <summary>Counts one packet copy as dropped. Any thread.</summary>
    private void DropOne()
    {
        Interlocked.Increment(ref _dropped);
        if (Interlocked.Decrement(ref _inFlight) == 0)
            NotifyIfQuiet();
    }

    /// <summary>One copy of a packet on the wire: when it arrives, and its place in the direction's send order.</summary>
    private readonly record struct Flight(RnicPacket Packet, ulong Arrival, long Seq);

    /// <summary>
    /// One direction of the link: the send-side state (under the link's <c>_lock</c>) and the delivery worker, which
    /// holds packets not yet due in a queue ordered by (arrival, send sequence).
    /// </summary>
    private sealed class Direction : IEngineWorkHandler<Flight>
    {
        private readonly RnicLink _link;
        // Worker thread only (and the disposer, once the worker has exited).
        private readonly PriorityQueue<Flight, (ulong Arrival, long Seq)> _held = new();

        public Direction(RnicLink link, IRnicPort from, IRnicPort to, SimRandom random)
        {
            _link = link;
            From = from;
            To = to;
            Random = random;
            Worker = new EngineWorker<Flight>(link._scheduler, $"rnic link {from.Address}->{to.Address}", this);
        }

        public IRnicPort From { get; }

        public IRnicPort To { get; }

        public EngineWorker<Flight> Worker { get; }

        /// <summary>The fault decisions of this direction. Under the link's <c>_lock</c>.</summary>
        public SimRandom Random { get; }

        /// <summary>When the last packet sent this way has left the wire. Under the link's <c>_lock</c>.</summary>
        public ulong WireFreeAt { get; set; }

        /// <summary>The next send sequence number, which breaks ties between equal arrival times. Under the link's <c>_lock</c>.</summary>
        public long NextSeq { get; set; }

        /// <summary>
        /// Holds <paramref name="flight"/> and delivers, in (arrival, sequence) order, every held packet as it falls
        /// due. Runs on the worker thread. May sleep.
        /// </summary>
        /// <remarks>
        /// A reordered packet arrives after packets sent later, so the worker must not sleep until its arrival
        /// blindly: a packet sent meanwhile may be due first. It returns to take any packet already posted, and
        /// otherwise sleeps no further than the earliest arrival a packet sent after now could have
        /// (<see cref="EarliestNextArrival"/>); waking there, anything sent during the sleep is already posted and
        /// not yet due. Non-reordered packets never need that cap: each arrives before anything sent after it.
        /// It returns with packets held only when another item is posted, whose Run or Abort will see them.
        /// </remarks>
        public void Run(Flight flight)
        {
            _held.Enqueue(flight, (flight.Arrival, flight.Seq));
            var scheduler = _link._scheduler;
            while (_held.TryPeek(out var first, out var key))
            {
                if (_link.IsDisposing)
                {
                    DropHeld();
                    return;
                }
                ulong now = scheduler.Clock.Now;
                if (key.Arrival <= now)
                {
                    _held.Dequeue();
                    _link.Deliver(To, first.Packet);
                    continue;
                }
                if (Worker.Outstanding > 1)
                    return;                  // the next posted packet may be due before the held ones
                ulong until = Math.Min(key.Arrival, _link.EarliestNextArrival(this, now));
                scheduler.Sleep(until - now);
            }
        }

        /// <summary>Drops <paramref name="flight"/> and anything still held: the link is being disposed. Runs on the worker thread.</summary>
        public void Abort(Flight flight)
        {
            _link.DropOne();
            DropHeld();
        }

        /// <summary>Drops what a worker left held when it stopped without aborting it (a race with Dispose). Disposer only.</summary>
        public void DropLeftovers()
        {
            if (Worker.IsStopped)
                DropHeld();
        }

        private void DropHeld()
        {
            while (_held.TryDequeue(out _, out _))
                _link.DropOne();
        }
    }
}
