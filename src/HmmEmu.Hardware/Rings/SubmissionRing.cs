using HmmEmu.Hardware.Memory;

namespace HmmEmu.Hardware.Rings;

/// <summary>
/// A ring the driver produces and the device consumes. The driver writes entries, then rings the doorbell by
/// writing the new producer index (<see cref="Doorbell"/>). The device reads the entry at the consumer index
/// (<see cref="TryPeek"/>), processes it, and only then advances the consumer (<see cref="Advance"/>). A malformed or
/// unreadable entry stops the ring at that index; a stopped ring hands out no entries until reset.
/// </summary>
public sealed class SubmissionRing : DescriptorRing
{
    private readonly RingEntryValidator? _validator;

    /// <summary>Creates a disabled submission ring.</summary>
    /// <param name="port">The memory the ring lives in.</param>
    /// <param name="entrySize">Bytes per entry: a power of two from 4 to 4096.</param>
    /// <param name="validator">Rejects malformed entries; null accepts every readable entry.</param>
    public SubmissionRing(IMemoryPort port, int entrySize, RingEntryValidator? validator = null)
        : base(port, entrySize, deviceWrites: false)
    {
        _validator = validator;
    }

    /// <summary>
    /// The driver's doorbell: publishes <paramref name="producer"/> as the new producer index. Guest input: a value
    /// outside [0, 2 × count), more than count ahead of the consumer, or behind the current producer stops the ring
    /// with <see cref="RingError.BadIndex"/> (the value is the error index). A stopped ring still records valid
    /// producer values, so that entries submitted after a stop are known (and can be aborted on reset). Returns true
    /// when the value was recorded; false when it was rejected or the ring is disabled (the write is dropped).
    /// Never sleeps.
    /// </summary>
    public bool Doorbell(uint producer)
    {
        using (EnterLock())
        {
            if (StateLocked == RingState.Disabled)
                return false;
            if (!IsValidAdvanceLocked(producer, ConsumerLocked, ProducerLocked, CountLocked))
            {
                StopLocked(RingError.BadIndex, producer);
                return false;
            }
            PublishProducerLocked(producer);
            return true;
        }
    }

    /// <summary>Whether the ring is running and has an entry to hand out. Read without the lock: a hint (see <see cref="DescriptorRing"/>).</summary>
    public bool HasWork => StateUnlocked == RingState.Running && PendingUnlocked() != 0;

    /// <summary>
    /// Copies the entry at the consumer index into <paramref name="entry"/> without consuming it. Returns
    /// <see cref="RingFetch.Faulted"/> (and stops the ring) if the entry cannot be read or the validator rejects it.
    /// Never sleeps.
    /// </summary>
    /// <param name="entry">Receives the entry; must be exactly <see cref="DescriptorRing.EntrySize"/> bytes.</param>
    /// <param name="ticket">Names the entry for <see cref="Advance"/>.</param>
    public RingFetch TryPeek(Span<byte> entry, out RingTicket ticket)
    {
        CheckBuffer(entry.Length);
        using (EnterLock())
        {
            ticket = default;
            if (StateLocked != RingState.Running)
                return RingFetch.Stopped;
            uint index = ConsumerLocked;
            if (PendingLocked() == 0)
                return RingFetch.Empty;
            if (!ReadLocked(index, entry))
            {
                StopLocked(RingError.EntryUnreadable, index);
                return RingFetch.Faulted;
            }
            if (_validator is not null && !_validator(entry))
            {
                StopLocked(RingError.MalformedEntry, index);
                return RingFetch.Faulted;
            }
            ticket = new RingTicket(index, GenerationLocked);
            return RingFetch.Entry;
        }
    }

    /// <summary>
    /// Consumes the entry <paramref name="ticket"/> names, after the device finished with it. Returns false (and
    /// changes nothing) if the ring was reset or reconfigured since the entry was read. Never sleeps.
    /// </summary>
    public bool Advance(RingTicket ticket)
    {
        using (EnterLock())
        {
            if (ticket.Generation != GenerationLocked || ticket.Index != ConsumerLocked || PendingLocked() == 0)
                return false;
            PublishConsumerLocked(NextLocked(ConsumerLocked));
            return true;
        }
    }

    /// <summary>
    /// Consumes the entry at the consumer index whatever the ring's state, for a reset or shutdown that owes every
    /// pending entry an "aborted" answer. Returns false when nothing is pending. Never sleeps.
    /// </summary>
    /// <param name="entry">Receives the entry if it could be read; must be exactly <see cref="DescriptorRing.EntrySize"/> bytes.</param>
    /// <param name="index">The entry's ring index.</param>
    /// <param name="readable">Whether <paramref name="entry"/> holds the entry (false: zero-filled, memory unreadable).</param>
    public bool TryDrain(Span<byte> entry, out uint index, out bool readable)
    {
        CheckBuffer(entry.Length);
        using (EnterLock())
        {
            index = ConsumerLocked;
            readable = false;
            if (PendingLocked() == 0)
                return false;
            readable = ReadLocked(index, entry);
            if (!readable)
                entry.Clear();
            PublishConsumerLocked(NextLocked(ConsumerLocked));
            return true;
        }
    }

    private bool ReadLocked(uint index, Span<byte> entry)
    {
        // Configure checked alignment, so an entry never crosses a page: one span covers it.
        if (!Port.TryGetSpan(EntryAddressLocked(index), EntrySize, write: false, out var span) || span.Length != EntrySize)
            return false;
        span.CopyTo(entry);
        return true;
    }

    private void CheckBuffer(int length)
    {
        if (length != EntrySize)
        {
            throw new ArgumentException(
                $"The entry buffer is {length} bytes but this ring's entries are {EntrySize}; pass a span of exactly EntrySize bytes.",
                "entry");
        }
    }
}
