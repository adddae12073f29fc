using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Rings;

namespace HmmEmu.Hardware.Tests.Rings;

public sealed class CompletionRingTests
{
    private const int EntrySize = 16;
    private const ulong Base = 0x8000;

    private static (CompletionRing Ring, VramPort Port) Create(uint count)
    {
        var port = new VramPort(2UL << 20);
        var ring = new CompletionRing(port, EntrySize);
        Assert.Equal(RingError.None, ring.Configure(Base, count));
        return (ring, port);
    }

    private static byte[] Record(ulong value)
    {
        var r = new byte[EntrySize];
        BitConverter.TryWriteBytes(r, value);
        return r;
    }

    [Fact]
    public void HasRoom_FollowsPostsConsumesAndReconfiguration()
    {
        var (ring, _) = Create(4);
        for (ulong i = 0; i < 4; i++)
        {
            Assert.True(ring.HasRoom);
            Assert.True(ring.TryPost(Record(i), out _));
        }
        Assert.False(ring.HasRoom);                  // full: the last post left no free slot
        Assert.True(ring.Consume(1));
        Assert.True(ring.HasRoom);                   // the consume freed one: seen through the indices
        Assert.True(ring.Consume(4));

        // Posted 4, consumed 4: reconfigure as a 2-entry ring; the 4-entry ring's free count must not carry over.
        Assert.Equal(RingError.None, ring.Configure(Base, 2));
        Assert.True(ring.HasRoom);
        Assert.True(ring.TryPost(Record(10), out _));
        Assert.True(ring.HasRoom);
        Assert.True(ring.TryPost(Record(11), out _));
        Assert.False(ring.HasRoom);
        Assert.False(ring.TryPost(Record(12), out _)); // a post past HasRoom overflows: HasRoom was right to refuse
        Assert.False(ring.HasRoom);                  // stopped
    }

    [Fact]
    public void TryPost_ManyWraps_DriverReadsEveryRecordInOrder()
    {
        const uint count = 4;
        var (ring, port) = Create(count);
        uint consumer = 0;
        ulong expected = 0;

        for (ulong value = 0; value < 1000; value++)
        {
            Assert.True(ring.TryPost(Record(value), out _));
            if (ring.FreeSlots > 0 && value % 4 != 3)
                continue;
            while (consumer != ring.Producer)
            {
                Assert.True(port.TryReadUInt64(Base + ((consumer & (count - 1)) * EntrySize), out ulong got));
                Assert.Equal(expected++, got);
                consumer = (consumer + 1) & ((2 * count) - 1);
            }
            Assert.True(ring.Consume(consumer));
            ring.AssertInvariants();
        }

        Assert.Equal(1000UL, expected);
        Assert.Equal(0L, ring.DroppedRecords);
    }

    [Fact]
    public void TryPost_FullRing_ReportsOverflowAndLeavesUnconsumedRecordIntact()
    {
        var (ring, port) = Create(2);
        ring.TryPost(Record(11), out _);
        ring.TryPost(Record(22), out _);

        Assert.False(ring.TryPost(Record(33), out uint index));

        Assert.Equal(new RingStatus(RingState.Stopped, RingError.Overflow, 2), ring.Status);
        Assert.Equal(2u, index);
        Assert.Equal(1L, ring.DroppedRecords);
        Assert.True(port.TryReadUInt64(Base, out ulong first));
        Assert.Equal(11UL, first);
    }

    [Fact]
    public void TryPost_AfterOverflow_RefusesUntilRecovered()
    {
        var (ring, _) = Create(2);
        ring.TryPost(Record(1), out _);
        ring.TryPost(Record(2), out _);
        ring.TryPost(Record(3), out _);
        ring.Consume(2);

        Assert.False(ring.TryPost(Record(4), out _));
        ring.Recover();
        Assert.True(ring.TryPost(Record(5), out uint index));
        Assert.Equal(2u, index);
    }

    [Fact]
    public void Consume_PastProducer_StopsRingWithBadIndex()
    {
        var (ring, _) = Create(8);
        ring.TryPost(Record(1), out _);

        Assert.False(ring.Consume(2));

        Assert.Equal(new RingStatus(RingState.Stopped, RingError.BadIndex, 2), ring.Status);
        Assert.Equal(0u, ring.Consumer);
    }

    [Fact]
    public void Configure_OnPageTheDeviceCannotWrite_StopsWithBadBase()
    {
        using var kernel = new HmmEmu.Kernel.HostKernel(HmmEmu.Kernel.KernelOptions.For(1) with { RamBytes = 4UL << 20 });
        var ring = new CompletionRing(new SystemMemoryPort(kernel.Memory), EntrySize);

        Assert.Equal(RingError.BadBase, ring.Configure(0, 8)); // frame 0 is the shared zero page: read-only
    }
}
