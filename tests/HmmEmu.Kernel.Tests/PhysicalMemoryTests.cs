using HmmEmu.Kernel.Memory;

namespace HmmEmu.Kernel.Tests;

public sealed class PhysicalMemoryTests
{
    [Fact]
    public void AllocPage_AfterContiguousBlockTaken_NeverHandsOutItsFramesAndRunsDry()
    {
        using var m = TestMachine.Create(ramBytes: 8UL << 20);
        var mem = m.Kernel.Memory;
        Assert.Equal(Errno.Ok, mem.AllocContiguous(9, Gfp.Atomic, out ulong block));
        ulong free = mem.FreePages;

        var seen = new HashSet<ulong>();
        while (mem.AllocPage(Gfp.Atomic | Gfp.NoWarn, out ulong pfn) == Errno.Ok)
        {
            Assert.False(pfn >= block && pfn < block + 512, $"pfn 0x{pfn:x} belongs to the 2 MiB block at 0x{block:x}");
            Assert.True(seen.Add(pfn), $"pfn 0x{pfn:x} handed out twice");
        }

        Assert.Equal(free, (ulong)seen.Count);
        Assert.Equal(0UL, mem.FreePages);
        foreach (ulong pfn in seen)
            mem.PutPage(pfn);
        for (ulong j = 0; j < 512; j++)
            mem.PutPage(block + j);
        Assert.Equal(mem.TotalPages - 1, mem.FreePages);
    }

    [Fact]
    public void AllocContiguous_BlockFreedAndRetaken_EachFrameAllocatedOnceAfterward()
    {
        using var m = TestMachine.Create(ramBytes: 8UL << 20);
        var mem = m.Kernel.Memory;
        for (int round = 0; round < 3; round++)
        {
            Assert.Equal(Errno.Ok, mem.AllocContiguous(9, Gfp.Atomic, out ulong block));
            for (ulong j = 0; j < 512; j++)
                mem.PutPage(block + j);
        }

        var seen = new HashSet<ulong>();
        while (mem.AllocPage(Gfp.Atomic | Gfp.NoWarn, out ulong pfn) == Errno.Ok)
            Assert.True(seen.Add(pfn), $"pfn 0x{pfn:x} handed out twice");

        Assert.Equal(mem.TotalPages - 1, (ulong)seen.Count);
    }

    [Fact]
    public void AllocPage_Order_MostRecentlyFreedFirstThenAscendingNeverUsedFrames()
    {
        using var m = TestMachine.Create(ramBytes: 8UL << 20);
        var mem = m.Kernel.Memory;
        ulong[] Take(int n)
        {
            var got = new ulong[n];
            for (int i = 0; i < n; i++)
                Assert.Equal(Errno.Ok, mem.AllocPage(Gfp.Atomic, out got[i]));
            return got;
        }

        Assert.Equal([1UL, 2, 3], Take(3));
        mem.PutPage(2);
        mem.PutPage(1);
        Assert.Equal([1UL, 2], Take(2));

        // A block taken beyond the frames handed out so far goes back in place when freed, not on top.
        Assert.Equal(Errno.Ok, mem.AllocContiguous(2, Gfp.Atomic, out ulong block));
        Assert.Equal(4UL, block);
        for (ulong pfn = 4; pfn < 8; pfn++)
            mem.PutPage(pfn);
        Assert.Equal([4UL, 5, 6, 7, 8], Take(5));

        // Single-page allocation steps over a block's frames; freed later, they come back most recent first.
        Assert.Equal(Errno.Ok, mem.AllocContiguous(2, Gfp.Atomic, out block));
        Assert.Equal(12UL, block);
        Assert.Equal([9UL, 10, 11, 16], Take(4));
        mem.PutPage(13);
        mem.PutPage(12);
        Assert.Equal([12UL, 13, 17], Take(3));
    }
}
