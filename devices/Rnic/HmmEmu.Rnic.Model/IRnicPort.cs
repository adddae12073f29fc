namespace HmmEmu.Rnic.Model;

/// <summary>
/// A NIC port as the link sees it: where delivered packets go, and whether the port is busy with packets it has
/// accepted but not yet processed (the link's quiet check for retransmission timers uses it).
/// </summary>
public interface IRnicPort
{
    /// <summary>This port's address on the link (PORT_ADDRESS).</summary>
    uint Address { get; }

    /// <summary>Packets accepted by <see cref="Receive"/> and not yet processed.</summary>
    int ReceiveBacklog { get; }

    /// <summary>
    /// Takes a packet the link delivers. Never sleeps and never throws for any packet content: a port drops what it
    /// cannot use. Called on the link's worker thread, or on the sender's thread when the link hands a packet over
    /// directly (threaded mode, clean link).
    /// </summary>
    void Receive(RnicPacket packet);

    /// <summary>
    /// Takes several packets at once, in order (the link hands a sender's burst over in one go when it can). Same rules
    /// as <see cref="Receive"/>; the port copies what it keeps, since the caller reuses the list.
    /// </summary>
    void ReceiveBurst(IReadOnlyList<RnicPacket> packets);
}
