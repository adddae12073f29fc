using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Memory;

namespace HmmEmu.Kernel.Tests.Bus;

/// <summary>DMA-visible memory through the driver's handle: coherent buffers and streaming page mappings.</summary>
public sealed class PciDmaTests
{
    private const ulong Page = TestMachine.Page;
    private static readonly PciDeviceId s_id = new(0x1af4, 0x1000);

    /// <summary>Plugs a fake device, binds a driver, and runs <paramref name="body"/> with the driver's handle. May sleep.</summary>
    private static FakePciDriver Bind(PciBus bus, Action<PciDev> body)
    {
        var driver = new FakePciDriver("fake", s_id);
        bus.Plug(0, new FakePciDevice(s_id.VendorId, s_id.DeviceId));
        bus.RegisterDriver(driver);
        body(driver.Bound.Single());
        return driver;
    }

    [Fact]
    public void AllocCoherent_CpuWrite_VisibleAtBusAddressInPhysicalMemory()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        byte atBusAddress = 0;

        m.Run(() => Bind(bus, dev =>
        {
            Assert.Equal(Errno.Ok, dev.AllocCoherent(2 * Page, out var buf));
            buf!.Span[(int)Page + 5] = 0xa5;
            ulong pfn = (buf.BusAddress + Page) >> PhysicalMemory.PageShift;
            atBusAddress = m.Kernel.Memory.PageBytes(pfn)[5];
        }));

        Assert.Equal(0xa5, atBusAddress);
    }

    [Fact]
    public void AllocCoherent_FreshBuffer_IsZeroFilled()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        bool allZero = false;

        m.Run(() =>
        {
            // Dirty some pages first so that a recycled frame would show through.
            Assert.Equal(Errno.Ok, m.Kernel.Memory.AllocContiguous(3, Gfp.Kernel, out ulong dirty));
            for (ulong i = 0; i < 8; i++)
                m.Kernel.Memory.PageBytes(dirty + i).Fill(0xff);
            for (ulong i = 0; i < 8; i++)
                m.Kernel.Memory.PutPage(dirty + i);
            Bind(bus, dev =>
            {
                Assert.Equal(Errno.Ok, dev.AllocCoherent(8 * Page, out var buf));
                allZero = !buf!.Span.ContainsAnyExcept((byte)0);
            });
        });

        Assert.True(allZero);
    }

    [Fact]
    public void AllocCoherent_ThreePages_TakesANaturallyAlignedFourPageBlock()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        DmaCoherentBuffer? buf = null;

        m.Run(() => Bind(bus, dev => Assert.Equal(Errno.Ok, dev.AllocCoherent(3 * Page, out buf))));

        Assert.Equal(4, buf!.Pages);
        Assert.Equal(0UL, buf.BusAddress % (4 * Page));
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(PciBus.MaxCoherentBytes + 1)]
    public void AllocCoherent_SizeZeroOrAbove2MiB_ReturnsEINVAL(ulong bytes)
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        Errno err = Errno.Ok;

        m.Run(() => Bind(bus, dev => err = dev.AllocCoherent(bytes, out _)));

        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void UnregisterDriver_CoherentBufferNotFreed_BusFreesItsPages()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        ulong before = 0, after = 0;
        DmaCoherentBuffer? buf = null;

        m.Run(() =>
        {
            before = m.Kernel.Memory.FreePages;
            var driver = Bind(bus, dev => Assert.Equal(Errno.Ok, dev.AllocCoherent(16 * Page, out buf)));
            bus.UnregisterDriver(driver);
            after = m.Kernel.Memory.FreePages;
        });

        Assert.Equal(before, after);
        Assert.True(buf!.IsFreed);
        Assert.Equal(0, bus.DmaPagesInUse);
        m.Kernel.AssertNoWarnings();
    }

    [Fact]
    public void FreeCoherent_SameBufferTwice_Throws()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);

        var ex = Assert.Throws<KernelRuleViolationException>(() => m.Run(() => Bind(bus, dev =>
        {
            Assert.Equal(Errno.Ok, dev.AllocCoherent(Page, out var buf));
            dev.FreeCoherent(buf!);
            dev.FreeCoherent(buf!);
        })));

        Assert.Contains("double free", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Span_AfterFreeCoherent_Throws()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);

        Assert.Throws<KernelRuleViolationException>(() => m.Run(() => Bind(bus, dev =>
        {
            Assert.Equal(Errno.Ok, dev.AllocCoherent(Page, out var buf));
            dev.FreeCoherent(buf!);
            buf!.Span[0] = 1;
        })));
    }

    [Fact]
    public void DmaMapPage_AllocatedPage_ReturnsPhysicalAddressAndHoldsAReference()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        ulong pfn = 0, bus1 = 0;
        int refsMapped = 0, refsUnmapped = 0;

        m.Run(() => Bind(bus, dev =>
        {
            Assert.Equal(Errno.Ok, m.Kernel.Memory.AllocPage(Gfp.Kernel, out pfn));
            Assert.Equal(Errno.Ok, dev.DmaMapPage(pfn, out bus1));
            refsMapped = m.Kernel.Memory.RefCount(pfn);
            dev.DmaUnmapPage(bus1);
            refsUnmapped = m.Kernel.Memory.RefCount(pfn);
        }));

        Assert.Equal(pfn << PhysicalMemory.PageShift, bus1);
        Assert.Equal(2, refsMapped);
        Assert.Equal(1, refsUnmapped);
    }

    // As in Linux: a read of untouched anonymous memory gives the shared zero page, and a device mirroring it must be
    // able to map it for reading (a DMA write to it stays refused by the memory port).
    [Fact]
    public void DmaMapPage_ZeroPage_MapsForReadingAndUnmapsBalanced()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        ulong busAddress = ulong.MaxValue;
        long mappedWhileHeld = -1, mappedAfter = -1;

        m.Run(() => Bind(bus, dev =>
        {
            Assert.Equal(Errno.Ok, dev.DmaMapPage(PhysicalMemory.ZeroPfn, out busAddress));
            mappedWhileHeld = bus.DmaPagesInUse;
            dev.DmaUnmapPage(busAddress);
            mappedAfter = bus.DmaPagesInUse;
        }));

        Assert.Equal(PhysicalMemory.ZeroPfn << PhysicalMemory.PageShift, busAddress);
        Assert.Equal(1, mappedWhileHeld);
        Assert.Equal(0, mappedAfter);
        Assert.Empty(m.Kernel.Warnings);
    }

    [Fact]
    public void DmaUnmapPage_AddressNeverMapped_Throws()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);

        var ex = Assert.Throws<KernelRuleViolationException>(() => m.Run(() => Bind(bus, dev => dev.DmaUnmapPage(0x40_0000))));

        Assert.Contains("has not mapped", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DmaMapPage_FreePage_Throws()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);

        Assert.Throws<KernelRuleViolationException>(() => m.Run(() => Bind(bus, dev =>
        {
            Assert.Equal(Errno.Ok, m.Kernel.Memory.AllocPage(Gfp.Kernel, out ulong pfn));
            m.Kernel.Memory.PutPage(pfn);
            dev.DmaMapPage(pfn, out _);
        })));
    }

    [Fact]
    public void UnregisterDriver_StreamingMappingLeft_WarnsAndDropsTheReference()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        ulong pfn = 0;
        int refsAfter = 0;

        m.Run(() =>
        {
            var driver = Bind(bus, dev =>
            {
                Assert.Equal(Errno.Ok, m.Kernel.Memory.AllocPage(Gfp.Kernel, out pfn));
                Assert.Equal(Errno.Ok, dev.DmaMapPage(pfn, out _));
            });
            bus.UnregisterDriver(driver);
            refsAfter = m.Kernel.Memory.RefCount(pfn);
        });

        Assert.Equal(1, refsAfter);
        Assert.Contains("streaming DMA mapping", Assert.Single(m.Kernel.Warnings).Message, StringComparison.Ordinal);
    }
}
