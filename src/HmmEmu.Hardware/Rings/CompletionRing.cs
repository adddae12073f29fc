using HmmEmu.Hardware.Memory;

namespace HmmEmu.Hardware.Rings;

/// <summary>
/// A ring the device produces (completion or event records) and the driver consumes. The device posts a record at
/// the producer index (<see cref="TryPost"/>); the driver reads records and then writes its new consumer index
/// (<see cref="Consume"/>). The device never overwrites a record the driver has not consumed: a post into a full ring
/// is refused, stops the ring with <see cref="RingError.Overflow"/> and is counted in <see cref="DroppedRecords"/>.
/// </summary>
public sealed class CompletionRing : DescriptorRing
{
    private long _dropped;

    /// <summary>Creates a disabled completion ring of <paramref name="entrySize"/>-byte records in <paramref name="port"/>.</summary>
    public CompletionRing(IMemoryPort port, int entrySize)
        : base(port, entrySize, deviceWrites: true)
    {
    }

    /// <summary>Records the device had to post but could not (ring full, stopped or disabled). Each one was also reported in <see cref="DescriptorRing.Status"/>.</summary>
    public long DroppedRecords => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Free slots while the ring runs; 0 when it is stopped or disabled. Read without the lock: exact for the device,
    /// the ring's only producer, except while the driver reconfigures or consumes (see <see cref="DescriptorRing"/>).
    /// </summary>
    public int FreeSlots => StateUnlocked == RingState.Running ? (int)(CountUnlocked - PendingUnlocked()) : 0;

    /// <summary>Whether a post would succeed now (a hint, as <see cref="FreeSlots"/>).</summary>
    public bool HasRoom => FreeSlots > 0;

    /// <summary>
    /// Writes <paramref name="record"/> at the producer index, then publishes it by advancing the producer. Returns
    /// false if the record could not be posted: full (stops the ring with <see cref="RingError.Overflow"/>),
    /// unwritable memory (<see cref="RingError.EntryUnwritable"/>), or a stopped or disabled ring. Never sleeps.
    /// </summary>
    /// <param name="record">The record; must be exactly <see cref="DescriptorRing.EntrySize"/> bytes.</param>
    /// <param name="index">The index the record was written at (the index it was meant for, when refused).</param>
    public bool TryPost(ReadOnlySpan<byte> record, out uint index)
    {
        if (record.Length != EntrySize)
        {
            throw new ArgumentException(
                $"The record is {record.Length} bytes but this ring's entries are {EntrySize}; pass exactly EntrySize bytes.",
                nameof(record));
        }
        using (EnterLock())
        {
            index = ProducerLocked;
            if (StateLocked != RingState.Running)
            {
                _dropped++;
                return false;
            }
            if (PendingLocked() == CountLocked)
            {
                StopLocked(RingError.Overflow, index);
                _dropped++;
                return false;
            }
            if (!Port.TryGetSpan(EntryAddressLocked(index), EntrySize, write: true, out var span) || span.Length != EntrySize)
            {
                StopLocked(RingError.EntryUnwritable, index);
                _dropped++;
                return false;
            }
            record.CopyTo(span);
            PublishProducerLocked(NextLocked(index));
            return true;
        }
    }

    /// <summary>
    /// The driver's write of its consumer index: records up to (not including) <paramref name="consumer"/> are
    /// consumed and their slots free. Guest input: a value out of range, past the producer or moving backwards stops
    /// the ring with <see cref="RingError.BadIndex"/> and returns false. A stopped ring still accepts valid values
    /// (so the driver can drain it before a reset); a disabled ring ignores the write. Never sleeps.
    /// </summary>
    public bool Consume(uint consumer)
    {
        using (EnterLock())
        {
            if (StateLocked == RingState.Disabled)
                return false;
            uint pending = PendingLocked();
            if (!IsValidAdvanceLocked(consumer, ConsumerLocked, ConsumerLocked, pending))
            {
                StopLocked(RingError.BadIndex, consumer);
                return false;
            }
            PublishConsumerLocked(consumer);
            return true;
        }
    }
}
