using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using MyDevice.Driver;

namespace MyDevice.Tests;

public class MyDevDriverTests
{
    private const int Page = PhysicalMemory.PageSize;

    [Fact]
    public void Read_OfPagesTheCpuWrote_FaultsThemInAndSeesTheCpuData()
    {
        using var m = MyDevMachine.Boot();
        var data = Pattern(2, 0x11);
        var seen = new byte[2 * Page];
        var err = Errno.EIO;
        IReadOnlyList<MyDevMapping> mappings = [];
        m.OnProcess(() =>
        {
            ulong addr = m.MapAnon(2);
            m.Process.WriteBytes(addr, data);
            Assert.Equal(Errno.Ok, m.Device.Open(out var mirror));
            err = mirror!.Read(addr, seen);
            mappings = mirror.Mappings();
            mirror.Close();
        });

        Assert.Equal(Errno.Ok, err);
        Assert.Equal(data, seen);
        Assert.Equal(2, mappings.Count);
        m.Kernel.AssertNoWarnings();
    }

    [Fact]
    public void Write_ThenCpuRead_SeesTheDeviceData()
    {
        using var m = MyDevMachine.Boot();
        var data = Pattern(3, 0x22);
        var seen = new byte[3 * Page];
        var err = Errno.EIO;
        m.OnProcess(() =>
        {
            ulong addr = m.MapAnon(3);
            Assert.Equal(Errno.Ok, m.Device.Open(out var mirror));
            err = mirror!.Write(addr, data);
            m.Process.ReadBytes(addr, seen);
            mirror.Close();
        });

        Assert.Equal(Errno.Ok, err);
        Assert.Equal(data, seen);
    }

    [Fact]
    public void Munmap_AfterDeviceRead_DropsEveryMappingAndInvalidatesTheDeviceTlb()
    {
        using var m = MyDevMachine.Boot();
        MyDevContext? mirror = null;
        ulong addr = 0;
        m.OnProcess(() =>
        {
            addr = m.MapAnon(4);
            m.Process.WriteBytes(addr, Pattern(4, 0x33));
            Assert.Equal(Errno.Ok, m.Device.Open(out mirror));
            Assert.Equal(Errno.Ok, mirror!.Read(addr, new byte[4 * Page]));
        });
        long before = m.Model.Invalidations;

        m.OnProcess(() => Assert.Equal(Errno.Ok, m.Process.Mm.Munmap(addr, 4 * Page)));

        Assert.Empty(mirror!.Mappings());
        Assert.True(m.Model.Invalidations > before, "the driver did not invalidate the device TLB");
        m.OnProcess(mirror.Close);
    }

    private static byte[] Pattern(int pages, byte seed)
    {
        var data = new byte[pages * Page];
        for (int i = 0; i < data.Length; i++)
            data[i] = (byte)(seed + (i * 7));
        return data;
    }
}
