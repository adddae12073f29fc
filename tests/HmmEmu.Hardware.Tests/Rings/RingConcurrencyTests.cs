using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Rings;

namespace HmmEmu.Hardware.Tests.Rings;

/// <summary>
/// A driver and a device on two real threads, as in threaded mode: the per-entry reads that take no lock (Producer,
/// HasWork, HasRoom) and the ring's own spin lock must hand every entry over once, in order, with its contents.
/// </summary>
public sealed class RingConcurrencyTests
{
    private const int Entries = 40_000;
    private const uint Count = 4;
    private const int EntrySize = 16;
    private const ulong Base = 0x2000;

    [Fact]
    public void SubmissionRing_DriverAndDeviceThreads_EveryEntryOnceInOrder()
    {
        var port = new VramPort(2UL << 20);
        var ring = new SubmissionRing(port, EntrySize);
        Assert.Equal(RingError.None, ring.Configure(Base, Count));
        string? failure = null;

        var device = new Thread(() =>
        {
            Span<byte> entry = stackalloc byte[EntrySize];
            for (ulong expected = 0; expected < Entries && failure is null;)
            {
                if (!ring.HasWork)
                {
                    Thread.SpinWait(1);
                    continue;
                }
                if (ring.TryPeek(entry, out var ticket) != RingFetch.Entry)
                {
                    failure = $"HasWork said yes but the fetch of entry {expected} did not return it ({ring.Status}).";
                    return;
                }
                ulong value = BitConverter.ToUInt64(entry);
                if (value != expected)
                {
                    failure = $"The device read {value} where entry {expected} was published.";
                    return;
                }
                if (!ring.Advance(ticket))
                {
                    failure = $"Advance past entry {expected} was refused.";
                    return;
                }
                expected++;
            }
        });
        device.Start();

        uint producer = 0;
        for (ulong i = 0; i < Entries && failure is null;)
        {
            if (((producer - ring.Consumer) & ((2 * Count) - 1)) == Count)
            {
                Thread.SpinWait(1);
                continue;
            }
            Assert.True(port.TryWriteUInt64(Base + ((producer & (Count - 1)) * EntrySize), i));
            producer = (producer + 1) & ((2 * Count) - 1);
            Assert.True(ring.Doorbell(producer), $"doorbell {i}: {ring.Status}");
            i++;
        }
        device.Join();

        Assert.Null(failure);
        Assert.Equal(RingError.None, ring.Status.Error);
        Assert.Equal(0, ring.Pending);
        ring.AssertInvariants();
    }

    [Fact]
    public void CompletionRing_DeviceAndDriverThreads_EveryRecordOnceInOrder()
    {
        var port = new VramPort(2UL << 20);
        var ring = new CompletionRing(port, EntrySize);
        Assert.Equal(RingError.None, ring.Configure(Base, Count));
        string? failure = null;

        var device = new Thread(() =>
        {
            var record = new byte[EntrySize];
            for (ulong i = 0; i < Entries && failure is null;)
            {
                if (!ring.HasRoom)
                {
                    Thread.SpinWait(1);
                    continue;
                }
                BitConverter.TryWriteBytes(record, i);
                if (!ring.TryPost(record, out _))
                {
                    failure = $"HasRoom said yes but the post of record {i} was refused ({ring.Status}).";
                    return;
                }
                i++;
            }
        });
        device.Start();

        uint consumer = 0;
        for (ulong expected = 0; expected < Entries && failure is null;)
        {
            uint producer = ring.Producer;
            if (producer == consumer)
            {
                Thread.SpinWait(1);
                continue;
            }
            while (consumer != producer)
            {
                Assert.True(port.TryReadUInt64(Base + ((consumer & (Count - 1)) * EntrySize), out ulong value));
                Assert.True(value == expected, $"The driver read {value} where record {expected} was published.");
                consumer = (consumer + 1) & ((2 * Count) - 1);
                expected++;
            }
            Assert.True(ring.Consume(consumer), $"consume: {ring.Status}");
        }
        device.Join();

        Assert.Null(failure);
        Assert.Equal(RingError.None, ring.Status.Error);
        Assert.Equal(0L, ring.DroppedRecords);
        ring.AssertInvariants();
    }

    [Fact]
    public void Validator_ThatUsesTheRing_IsToldTheLockIsNotReentrant()
    {
        var port = new VramPort(2UL << 20);
        SubmissionRing? ring = null;
        ring = new SubmissionRing(port, EntrySize, _ => ring!.Pending >= 0 && ring.Status.Error == RingError.None);
        Assert.Equal(RingError.None, ring.Configure(Base, Count));
        Assert.True(ring.Doorbell(1));

        var ex = Assert.Throws<InvalidOperationException>(() => ring.TryPeek(new byte[EntrySize], out _));

        Assert.Contains("not reentrant", ex.Message, StringComparison.Ordinal);
        // The lock was released on the way out: the ring still answers.
        Assert.Equal(1, ring.Pending);
    }
}
