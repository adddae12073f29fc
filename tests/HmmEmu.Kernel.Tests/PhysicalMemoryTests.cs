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
}
