using HmmEmu.Hardware.Memory;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;

namespace HmmEmu.Hardware.Tests.Memory;

public sealed class MemoryPortTests
{
    [Fact]
    public void SystemPort_WriteToZeroPage_IsRefusedAndLeavesItZero()
    {
        using var kernel = new HostKernel(KernelOptions.For(1) with { RamBytes = 4UL << 20 });
        var port = new SystemMemoryPort(kernel.Memory);

        Assert.False(port.TryWriteUInt64(8, 0xdead_beef));
        Assert.True(port.TryReadUInt64(8, out ulong v));
        Assert.Equal(0UL, v);
    }

    [Fact]
    public void SystemPort_AddressPastRam_IsRefused()
    {
        using var kernel = new HostKernel(KernelOptions.For(1) with { RamBytes = 4UL << 20 });
        var port = new SystemMemoryPort(kernel.Memory);

        Assert.Equal(4UL << 20, port.Size);
        Assert.False(port.TryReadUInt32(port.Size, out _));
        Assert.True(port.TryGetSpan(port.Size - 2, 8, write: false, out var tail));
        Assert.Equal(2, tail.Length);
    }

    [Fact]
    public void SystemPort_ValueAcrossPageBoundary_RoundTripsThroughBothFrames()
    {
        using var kernel = new HostKernel(KernelOptions.For(1) with { RamBytes = 4UL << 20 });
        var port = new SystemMemoryPort(kernel.Memory);
        Assert.Equal(Errno.Ok, kernel.Memory.AllocContiguous(1, Gfp.Kernel, out ulong pfn));
        ulong address = ((pfn + 1) << PhysicalMemory.PageShift) - 4;

        Assert.True(port.TryWriteUInt64(address, 0x1122_3344_5566_7788));

        Assert.Equal(0x88, kernel.Memory.PageBytes(pfn)[PhysicalMemory.PageSize - 4]);
        Assert.Equal(0x11, kernel.Memory.PageBytes(pfn + 1)[3]);
        Assert.True(port.TryReadUInt64(address, out ulong v));
        Assert.Equal(0x1122_3344_5566_7788UL, v);
    }

    [Fact]
    public void VramPort_WritePartlyOutOfRange_WritesNothing()
    {
        var vram = new VramPort(2UL << 20);

        Assert.False(vram.TryWriteUInt64(vram.Size - 4, ulong.MaxValue));

        Assert.True(vram.TryReadUInt32(vram.Size - 4, out uint tail));
        Assert.Equal(0u, tail);
    }

    [Fact]
    public void VramPort_SpanNeverCrossesA2MiBBlock()
    {
        var vram = new VramPort(4UL << 20);

        Assert.True(vram.TryGetSpan((2UL << 20) - 16, 64, write: true, out var span));

        Assert.Equal(16, span.Length);
    }

    [Fact]
    public void SystemPort_SpanRunsToTheEndOfItsBlockNotFurther()
    {
        using var kernel = new HostKernel(KernelOptions.For(1) with { RamBytes = 8UL << 20 });
        var port = new SystemMemoryPort(kernel.Memory);
        ulong address = (2UL << 20) - 3 * 4096 + 100;

        Assert.True(port.TryGetSpan(address, 1 << 20, write: false, out var span));

        Assert.Equal(3 * 4096 - 100, span.Length);
        Assert.True(port.TryGetSpan(8192, 100, write: true, out var small));
        Assert.Equal(100, small.Length);
    }

    [Fact]
    public void VramPort_SizeNotMultipleOf2MiB_Throws()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new VramPort(3UL << 19));
        Assert.Contains("multiple of 2 MiB", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WatchingPort_AccessToFreeFrame_WarnsNamingIt_AllocatedFrameDoesNot()
    {
        using var kernel = new HostKernel(KernelOptions.For(1) with { RamBytes = 4UL << 20 });
        var port = new SystemMemoryPort(kernel.Memory, watchFreeFrames: true);
        Assert.Equal(Errno.Ok, kernel.Memory.AllocPage(Gfp.Kernel, out ulong used));
        Assert.Equal(Errno.Ok, kernel.Memory.AllocPage(Gfp.Kernel, out ulong freed));
        kernel.Memory.PutPage(freed);

        Assert.True(port.TryWriteUInt64(used << PhysicalMemory.PageShift, 1));
        int before = kernel.Warnings.Count;
        Assert.True(port.TryWriteUInt64(freed << PhysicalMemory.PageShift, 2));

        Assert.Equal(0, before);
        Assert.NotEmpty(kernel.Warnings);     // one per span the write looked at (it probes the range before writing)
        Assert.All(kernel.Warnings, w =>
        {
            Assert.Contains($"DMA write to free frame 0x{freed:x}", w.Message, StringComparison.Ordinal);
            Assert.Contains("INV-11", w.Message, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void PlainPort_AccessToFreeFrame_DoesNotWarn()
    {
        using var kernel = new HostKernel(KernelOptions.For(1) with { RamBytes = 4UL << 20 });
        var port = new SystemMemoryPort(kernel.Memory);

        Assert.True(port.TryWriteUInt64(16UL << PhysicalMemory.PageShift, 2));

        Assert.Empty(kernel.Warnings);
    }
}
