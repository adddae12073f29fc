using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;
using HmmEmu.Mirror;

namespace HmmEmu.Conformance.Tests;

// Bad ioctl arguments get the driver's error codes and leave the command and the device page table unchanged.
public sealed class MirrorIoctlTests
{
    private static void WithMirror(Action<Process, MirrorFile> body)
    {
        using var k = new HostKernel(KernelOptions.For(3));
        var dev = new MirrorDevice(k, 0);
        var p = k.CreateProcess("ioctl");
        k.Run(() => p.StartThread("main", () =>
        {
            Assert.Equal(Errno.Ok, dev.Open(out var f));
            body(p, f!);
            f!.Close();
            p.Exit();
        }).Join());
        k.AssertNoWarnings();
    }

    [Theory]
    [InlineData(0x1001UL, 1UL)]                 // unaligned address
    [InlineData(0x10000UL, 0UL)]                // zero pages
    [InlineData(0xFFFF_FFFF_FFFF_F000UL, 2UL)]  // wraps
    public void Ioctl_BadRange_ReturnsEINVALAndLeavesCommand(ulong addr, ulong npages)
    {
        WithMirror((p, f) =>
        {
            var cmd = new MirrorCommand { Addr = addr, Ptr = 0x5000, NPages = npages, CPages = 77, Faults = 88 };
            Assert.Equal(Errno.EINVAL, f.Ioctl(MirrorIoctl.Read, ref cmd));
            Assert.Equal(77UL, cmd.CPages);
            Assert.Equal(88UL, cmd.Faults);
            Assert.Equal(0, f.MappedPages);
        });
    }

    [Fact]
    public void Ioctl_UnknownRequest_ReturnsEINVAL()
    {
        WithMirror((p, f) =>
        {
            ulong a = p.Map(4096, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            var cmd = new MirrorCommand { Addr = a, Ptr = a, NPages = 1 };
            Assert.Equal(Errno.EINVAL, f.Ioctl((MirrorIoctl)0xC0284899, ref cmd));
        });
    }

    [Fact]
    public void Read_UnmappedAddress_ReturnsEFAULT()
    {
        WithMirror((p, f) =>
        {
            ulong buf = p.Map(4096, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            var cmd = new MirrorCommand { Addr = 0x1000_0000, Ptr = buf, NPages = 1 };
            Assert.Equal(Errno.EFAULT, f.Ioctl(MirrorIoctl.Read, ref cmd));
            Assert.Equal(0, f.MappedPages);
        });
    }

    [Fact]
    public void Invalidation_DropsDeviceEntries()
    {
        WithMirror((p, f) =>
        {
            ulong a = p.Map(8 * 4096, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong buf = p.Map(8 * 4096, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            p.WriteInt32(a, 1);
            var cmd = new MirrorCommand { Addr = a, Ptr = buf, NPages = 8 };
            Assert.Equal(Errno.Ok, f.Ioctl(MirrorIoctl.Read, ref cmd));
            Assert.Equal(8, f.MappedPages);
            Assert.Equal(Errno.Ok, p.Mm.Munmap(a + 4096, 2 * 4096));
            // dmirror_do_update erases [start, end] inclusive of the end page, as the kernel does.
            Assert.Equal(8 - 3, f.MappedPages);
        });
    }

    [Fact]
    public void Close_Twice_Throws()
    {
        WithMirror((p, f) =>
        {
            var dev = f.Device;
            Assert.Equal(Errno.Ok, dev.Open(out var second));
            second!.Close();
            Assert.Throws<InvalidOperationException>(second.Close);
        });
    }
}
