using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Rings;

namespace HmmEmu.Hardware.Tests.Rings;

public sealed class SubmissionRingTests
{
    private const int EntrySize = 16;
    private const ulong Base = 0x4000;

    private static (SubmissionRing Ring, IMemoryPort Port) Create(uint count, RingEntryValidator? validator = null, IMemoryPort? port = null)
    {
        port ??= new VramPort(2UL << 20);
        var ring = new SubmissionRing(port, EntrySize, validator);
        Assert.Equal(RingError.None, ring.Configure(Base, count));
        return (ring, port);
    }

    private static void WriteEntry(IMemoryPort port, uint count, uint index, ulong value) =>
        Assert.True(port.TryWriteUInt64(Base + ((index & (count - 1)) * EntrySize), value));

    [Fact]
    public void TryPeek_ManyWrapsOfASmallRing_DeliversEveryEntryOnceInOrder()
    {
        const uint count = 4;
        var (ring, port) = Create(count);
        Span<byte> entry = stackalloc byte[EntrySize];
        uint producer = 0;
        ulong next = 0;

        for (ulong value = 0; value < 1000; value++)
        {
            WriteEntry(port, count, producer, value);
            producer = (producer + 1) & ((2 * count) - 1);
            Assert.True(ring.Doorbell(producer));
            if (value % 3 != 2)
                continue; // let up to three entries queue up before consuming them
            while (ring.TryPeek(entry, out var ticket) == RingFetch.Entry)
            {
                Assert.Equal(next++, BitConverter.ToUInt64(entry));
                Assert.True(ring.Advance(ticket));
                ring.AssertInvariants();
            }
        }
        while (ring.TryPeek(entry, out var ticket) == RingFetch.Entry)
        {
            Assert.Equal(next++, BitConverter.ToUInt64(entry));
            ring.Advance(ticket);
        }

        Assert.Equal(1000UL, next);
        Assert.Equal(1000u % (2 * count), ring.Consumer);
    }

    [Fact]
    public void Doorbell_FillsRing_FullDiffersFromEmptyByTheWrapBit()
    {
        var (ring, _) = Create(8);

        Assert.True(ring.Doorbell(8));

        Assert.Equal(8, ring.Pending);
        Assert.Equal(ring.Consumer ^ 8u, ring.Producer);
        ring.AssertInvariants();
    }

    [Fact]
    public void TryPeek_AllConsumedAfterWrap_RingIsEmptyWithWrapBitSet()
    {
        var (ring, _) = Create(8);
        Span<byte> entry = stackalloc byte[EntrySize];
        ring.Doorbell(8);
        for (int i = 0; i < 8; i++)
        {
            ring.TryPeek(entry, out var ticket);
            ring.Advance(ticket);
        }

        Assert.Equal(RingFetch.Empty, ring.TryPeek(entry, out _));
        Assert.Equal(8u, ring.Consumer);
        Assert.Equal(8u, ring.Producer);
    }

    [Fact]
    public void Doorbell_MoreThanCountAheadOfConsumer_StopsRingWithBadIndex()
    {
        var (ring, _) = Create(8);

        Assert.False(ring.Doorbell(9));

        Assert.Equal(new RingStatus(RingState.Stopped, RingError.BadIndex, 9), ring.Status);
        Assert.Equal(0u, ring.Producer);
    }

    [Fact]
    public void Doorbell_IndexBeyondTwiceCount_StopsRingWithBadIndex()
    {
        var (ring, _) = Create(8);

        Assert.False(ring.Doorbell(0xFFFF_FFFF));

        Assert.Equal(RingError.BadIndex, ring.Status.Error);
        Assert.Equal(0xFFFF_FFFFu, ring.Status.ErrorIndex);
    }

    [Fact]
    public void Doorbell_ProducerMovesBackwards_StopsRingAndKeepsProducer()
    {
        var (ring, _) = Create(8);
        ring.Doorbell(5);

        Assert.False(ring.Doorbell(3));

        Assert.Equal(RingError.BadIndex, ring.Status.Error);
        Assert.Equal(5u, ring.Producer);
    }

    [Fact]
    public void Doorbell_DisabledRing_IsDroppedWithoutError()
    {
        var ring = new SubmissionRing(new VramPort(2UL << 20), EntrySize);

        Assert.False(ring.Doorbell(1));

        Assert.Equal(new RingStatus(RingState.Disabled, RingError.None, 0), ring.Status);
    }

    [Fact]
    public void Configure_CountNotPowerOfTwo_StopsWithBadSize()
    {
        var ring = new SubmissionRing(new VramPort(2UL << 20), EntrySize);

        Assert.Equal(RingError.BadSize, ring.Configure(Base, 12));

        Assert.Equal(RingState.Stopped, ring.Status.State);
        Assert.Equal(RingError.BadSize, ring.Status.Error);
    }

    [Fact]
    public void Configure_BaseNotAlignedToRingSize_StopsWithBadBase()
    {
        var ring = new SubmissionRing(new VramPort(2UL << 20), EntrySize);

        Assert.Equal(RingError.BadBase, ring.Configure(Base + 0x40, 8));
    }

    [Fact]
    public void Configure_RingRunsPastEndOfMemory_StopsWithBadBase()
    {
        var port = new VramPort(2UL << 20);
        var ring = new SubmissionRing(port, EntrySize);

        Assert.Equal(RingError.BadBase, ring.Configure(port.Size - 4096, 512));
    }

    [Fact]
    public void Configure_WhileEntriesPending_IsRefusedAsBusy()
    {
        var (ring, _) = Create(8);
        ring.Doorbell(2);

        Assert.Equal(RingError.Busy, ring.Configure(Base, 16));

        Assert.Equal(8, ring.EntryCount);
        Assert.Equal(2, ring.Pending);
    }

    [Fact]
    public void TryPeek_ValidatorRejectsEntry_StopsRingWithMalformedEntryAtItsIndex()
    {
        const uint count = 4;
        var (ring, port) = Create(count, static e => BitConverter.ToUInt64(e) != 0xBAD);
        Span<byte> entry = stackalloc byte[EntrySize];
        for (uint i = 0; i < 4; i++)
            WriteEntry(port, count, i, i + 1);
        ring.Doorbell(4);
        for (int i = 0; i < 4; i++)
        {
            ring.TryPeek(entry, out var t);
            ring.Advance(t);
        }
        WriteEntry(port, count, 4, 1);
        WriteEntry(port, count, 5, 0xBAD);
        ring.Doorbell(6);
        ring.TryPeek(entry, out var good);
        ring.Advance(good);

        Assert.Equal(RingFetch.Faulted, ring.TryPeek(entry, out _));

        Assert.Equal(new RingStatus(RingState.Stopped, RingError.MalformedEntry, 5), ring.Status);
        Assert.Equal(5u, ring.Consumer);
    }

    [Fact]
    public void TryPeek_EntryMemoryUnreadable_StopsRingWithEntryUnreadable()
    {
        var port = new SwitchablePort(2UL << 20);
        var (ring, _) = Create(8, port: port);
        ring.Doorbell(1);
        port.Broken = true;

        Assert.Equal(RingFetch.Faulted, ring.TryPeek(new byte[EntrySize], out _));

        Assert.Equal(new RingStatus(RingState.Stopped, RingError.EntryUnreadable, 0), ring.Status);
    }

    [Fact]
    public void TryPeek_StoppedRing_RefusesWorkUntilReset()
    {
        var (ring, _) = Create(8);
        ring.Doorbell(1);
        ring.Doorbell(20); // bad: stops the ring
        var entry = new byte[EntrySize];

        Assert.Equal(RingFetch.Stopped, ring.TryPeek(entry, out _));
        ring.Reset();
        ring.Doorbell(1);
        Assert.Equal(RingFetch.Entry, ring.TryPeek(entry, out _));
    }

    [Fact]
    public void Doorbell_StoppedRing_StillRecordsValidProducer()
    {
        var (ring, _) = Create(8);
        ring.Doorbell(20);

        Assert.True(ring.Doorbell(3));

        Assert.Equal(3, ring.Pending);
        Assert.Equal(RingState.Stopped, ring.Status.State);
    }

    [Fact]
    public void Advance_AfterReconfiguration_ChangesNothing()
    {
        var (ring, _) = Create(8);
        ring.Doorbell(1);
        ring.TryPeek(new byte[EntrySize], out var ticket);
        ring.Reset();

        Assert.False(ring.Advance(ticket));

        Assert.Equal(0u, ring.Consumer);
    }

    [Fact]
    public void TryDrain_StoppedRing_ConsumesEveryPendingEntryOnce()
    {
        var (ring, _) = Create(8);
        ring.Doorbell(3);
        ring.Doorbell(99);
        var entry = new byte[EntrySize];
        var indices = new List<uint>();

        while (ring.TryDrain(entry, out uint index, out _))
            indices.Add(index);

        Assert.Equal([0u, 1u, 2u], indices);
    }

    [Fact]
    public void Constructor_EntrySizeNotPowerOfTwo_ThrowsNamingTheRule()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SubmissionRing(new VramPort(2UL << 20), 24));

        Assert.Contains("power of two", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pack_Status_PutsStateErrorAndIndexInDocumentedBits()
    {
        var status = new RingStatus(RingState.Stopped, RingError.MalformedEntry, 0x1234);

        Assert.Equal(0x0000_1234_0000_0402UL, status.Pack());
    }
}
