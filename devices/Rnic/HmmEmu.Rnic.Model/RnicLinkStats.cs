namespace HmmEmu.Rnic.Model;

/// <summary>
/// A snapshot of a <see cref="RnicLink"/>'s counters, both directions together. Once the link is idle,
/// <c>Sent + Duplicated == Delivered + Dropped</c>; while packets travel, the difference is <see cref="RnicLink.InFlight"/>.
/// </summary>
/// <param name="Sent">Packets handed to <see cref="RnicLink.Send"/>, including those dropped.</param>
/// <param name="Delivered">Packets handed to the receiving port, each duplicate copy counted.</param>
/// <param name="Dropped">Packets lost on the wire, aborted by <see cref="RnicLink.Dispose"/>, or sent after it.</param>
/// <param name="Duplicated">Extra copies put on the wire (one per duplicated packet).</param>
/// <param name="Reordered">Packets delayed behind their successors.</param>
/// <param name="BytesDelivered">Wire bytes (header plus payload) of the delivered packets.</param>
public readonly record struct RnicLinkStats(
    long Sent, long Delivered, long Dropped, long Duplicated, long Reordered, long BytesDelivered);
