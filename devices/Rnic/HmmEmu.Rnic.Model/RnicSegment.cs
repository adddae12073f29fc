using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// A run of consecutive data packets of one SEND or WRITE message that travels as one object, with its payload left in
/// the sender's memory (zero copy): the requester translated the source pages and keeps its translation use open, and
/// whoever consumes the segment copies the bytes straight from those frames and then <see cref="Release"/>s it.
/// </summary>
/// <remarks>
/// <para>
/// Only a threaded-mode link that is clean and hands packets over directly carries segments (see
/// <see cref="RnicLink.CarriesSegments"/>); anywhere a packet could be delayed, lost, duplicated or kept, the link first
/// turns a segment back into ordinary packets with <see cref="Expand"/>. Deterministic mode never builds one, so its
/// traces are those of per-packet sending.
/// </para>
/// <para>
/// Why the use stays open: until the bytes are read, the translation the requester made is "in flight". An
/// INVALIDATE_MTT or DEREG_MR that covers a source page completes only after <see cref="Release"/>, exactly as it waits
/// for the requester's own DMA read in per-packet sending (INV-2). The application may not touch the source before the
/// WQE completes, and the WQE completes only after the responder placed the bytes, so reading them late reads what a
/// real NIC's DMA read would have.
/// </para>
/// </remarks>
internal sealed class RnicSegment
{
    private readonly SystemMemoryPort _memory;
    private readonly CachedPageTranslator _translator;
    private readonly RnicModel _sender;
    private readonly TranslationUse _use;
    private readonly RnicSegmentStorage _storage;
    private readonly int _extents;
    private int _released;
    private int _cursorExtent;      // the consumer's: the extent the last read stopped in, and its first payload byte
    private long _cursorStart;

    /// <summary>
    /// Wraps the first <paramref name="count"/> headers of <paramref name="storage"/> (one per packet, in PSN order) and
    /// its first <paramref name="extents"/> source extents, gathered under <paramref name="use"/>. The segment owns the
    /// storage from now on and gives it back to <paramref name="sender"/> when it is released.
    /// </summary>
    public RnicSegment(RnicModel sender, TranslationUse use, RnicSegmentStorage storage, int count, int extents)
    {
        _sender = sender;
        _memory = sender.Memory;
        _translator = sender.Translation;
        _use = use;
        _storage = storage;
        _extents = extents;
        Count = count;
        Header = storage.Headers[0];
        long bytes = 0;
        foreach (var h in storage.Headers.AsSpan(0, count))
            bytes += h.PayloadLength;
        PayloadBytes = bytes;
        sender.SegmentCreated();
    }

    /// <summary>How many packets the segment stands for (at least one). Valid after release too.</summary>
    public int Count { get; }

    /// <summary>The first packet's header. Valid after release too.</summary>
    public RnicPacketHeader Header { get; }

    /// <summary>The packets' headers, in PSN order. Only until <see cref="Release"/>: the storage is reused after it.</summary>
    public ReadOnlySpan<RnicPacketHeader> Headers
    {
        get
        {
            if (Released)
                ThrowReleased();
            return _storage.Headers.AsSpan(0, Count);
        }
    }

    /// <summary>Payload bytes of all packets together. Valid after release too.</summary>
    public long PayloadBytes { get; }

    /// <summary>Bytes on the wire: every packet's header and payload. Valid after release too.</summary>
    public int WireBytes => (int)((Count * (long)RnicPacketHeader.Size) + PayloadBytes);

    /// <summary>Whether <see cref="Release"/> has run.</summary>
    public bool Released => Volatile.Read(ref _released) != 0;

    /// <summary>Byte offset, within the segment's payload, of packet <paramref name="index"/>.</summary>
    public long OffsetOf(int index)
    {
        long offset = 0;
        foreach (var h in Headers[..index])
            offset += h.PayloadLength;
        return offset;
    }

    /// <summary>
    /// Copies payload bytes from <paramref name="offset"/> into <paramref name="destination"/> (its whole length), from
    /// the source frames. False if a frame is no longer readable (cannot happen while the use is open, since the frames
    /// stay mapped until the invalidation that waits for it).
    /// </summary>
    public bool CopyTo(long offset, Span<byte> destination)
    {
        if (Released)
            ThrowReleased();
        var extentAddress = _storage.ExtentAddress;
        var extentLength = _storage.ExtentLength;
        // Consumers read in order: seek from the extent the last read started in, unless this offset lies before it.
        int e = 0;
        long extentStart = 0;
        if (offset >= _cursorStart)
        {
            e = _cursorExtent;
            extentStart = _cursorStart;
        }
        while (e < _extents && offset - extentStart >= extentLength[e])
            extentStart += extentLength[e++];
        _cursorExtent = e;
        _cursorStart = extentStart;
        long within = offset - extentStart;
        int done = 0;
        while (done < destination.Length)
        {
            if (e >= _extents)
                return false;
            int want = (int)Math.Min(extentLength[e] - within, destination.Length - done);
            // An extent is physically contiguous, but RAM comes in separate 2 MiB blocks: a span stops at a block's end.
            if (!_memory.TryGetSpan(extentAddress[e] + (ulong)within, want, write: false, out var span))
                return false;
            int take = Math.Min(want, span.Length);
            span[..take].CopyTo(destination.Slice(done, take));
            done += take;
            within += take;
            if (within == extentLength[e])
            {
                within = 0;
                e++;
            }
        }
        return true;
    }

    /// <summary>
    /// Packet <paramref name="index"/>, whose payload starts at byte <paramref name="offset"/> of the segment's, as an
    /// ordinary packet with its own copy of the payload; null if its bytes cannot be read (the requester checked every
    /// frame when it gathered them, so this means a broken invariant: the packet is then dropped as the wire would lose
    /// it, never sent with made-up bytes, and RC resends it).
    /// </summary>
    public RnicPacket? Materialize(int index, long offset)
    {
        var h = Headers[index];
        var payload = h.PayloadLength == 0 ? [] : new byte[h.PayloadLength];
        return payload.Length == 0 || CopyTo(offset, payload) ? new RnicPacket(h, payload) : null;
    }

    /// <summary>
    /// Every packet as an ordinary packet (payloads copied), then releases the segment. A packet whose bytes cannot be
    /// read is left out (see <see cref="Materialize"/>).
    /// </summary>
    public List<RnicPacket> Expand()
    {
        var packets = new List<RnicPacket>(Count);
        long offset = 0;
        for (int i = 0; i < Count; i++)
        {
            if (Materialize(i, offset) is { } packet)
                packets.Add(packet);
            offset += Headers[i].PayloadLength;
        }
        Release();
        return packets;
    }

    /// <summary>Ends the requester's translation use (once; later calls do nothing). Never sleeps.</summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
            return;
        _translator.EndUse(_use);
        _sender.SegmentReleased(_storage);
    }

    private static void ThrowReleased() => throw new InvalidOperationException(
        "A released RNIC segment was read: its source frames and its storage may have been reused. Read a segment " +
        "before calling Release (the consumer releases it once, in a finally block, after it placed the bytes).");
}

/// <summary>
/// The arrays a segment needs (headers and source extents), sized for the largest segment and recycled through the
/// sending model (<see cref="RnicModel.RentSegmentStorage"/>): a 1 MiB WRITE would otherwise allocate tens of KiB
/// per message, and the collections that follow stop every simulated thread.
/// </summary>
internal sealed class RnicSegmentStorage
{
    /// <summary>Packets in one segment at most.</summary>
    public const int MaxPackets = 256;

    /// <summary>Source extents at most: a packet of up to 4 KiB spans at most two frames, plus one per SGE boundary.</summary>
    public const int MaxExtents = (MaxPackets * 2) + RnicSendWqe.MaxSge;

    public RnicPacketHeader[] Headers { get; } = new RnicPacketHeader[MaxPackets];

    public ulong[] ExtentAddress { get; } = new ulong[MaxExtents];

    public int[] ExtentLength { get; } = new int[MaxExtents];
}
