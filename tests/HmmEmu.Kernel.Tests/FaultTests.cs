using System.Text;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Tests;

public sealed class FaultTests
{
    private const ulong Page = TestMachine.Page;

    private static byte[] Bytes(string text) => Encoding.ASCII.GetBytes(text);

    [Fact]
    public void Read_UntouchedAnonymousPage_MapsZeroPage()
    {
        using var m = TestMachine.Create();
        Pte pte = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.ReadInt32(a);
            pte = m.Mm.GetPte(a);
        });

        Assert.True(pte.IsZeroPage, $"expected the zero page, got {pte}");
    }

    [Fact]
    public void Read_UntouchedAnonymousPage_ZeroPageIsReadOnly()
    {
        using var m = TestMachine.Create();
        Pte pte = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.ReadInt32(a);
            pte = m.Mm.GetPte(a);
        });

        Assert.False(pte.IsWritable);
    }

    [Fact]
    public void Read_UntouchedAnonymousPage_ReadsZero()
    {
        using var m = TestMachine.Create();
        int value = -1;

        m.Run(() => value = m.Process.ReadInt32(m.MapAnon(1) + 100));

        Assert.Equal(0, value);
    }

    [Fact]
    public void Write_UntouchedAnonymousPage_MapsPrivateWritablePage()
    {
        using var m = TestMachine.Create();
        Pte pte = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.WriteInt32(a, 7);
            pte = m.Mm.GetPte(a);
        });

        Assert.True(pte.IsWritable && !pte.IsSpecial && pte.Pfn != PhysicalMemory.ZeroPfn, $"expected a private writable page, got {pte}");
    }

    [Fact]
    public void Write_AfterReadMappedZeroPage_ReplacesZeroPageWithPrivatePage()
    {
        using var m = TestMachine.Create();
        Pte pte = default;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            m.Process.ReadInt32(a);
            m.Process.WriteInt32(a, 7);
            pte = m.Mm.GetPte(a);
        });

        Assert.True(pte.IsWritable && !pte.IsZeroPage, $"expected a private writable page, got {pte}");
    }

    [Fact]
    public void Write_AfterReadMappedZeroPage_ZeroPageStaysZero()
    {
        using var m = TestMachine.Create();
        int other = -1;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            ulong b = m.MapAnon(1);
            m.Process.ReadInt32(a);
            m.Process.ReadInt32(b);
            m.Process.WriteInt32(a, 7);
            other = m.Process.ReadInt32(b);
        });

        Assert.Equal(0, other);
    }

    [Fact]
    public void Write_ThenRead_ReturnsWrittenValue()
    {
        using var m = TestMachine.Create();
        int value = 0;

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Process.WriteInt32(a + Page + 8, 12345);
            value = m.Process.ReadInt32(a + Page + 8);
        });

        Assert.Equal(12345, value);
    }

    [Fact]
    public void WriteBytes_SpanningPageBoundary_LandsInBothPages()
    {
        using var m = TestMachine.Create();
        var read = new byte[8];

        m.Run(() =>
        {
            ulong a = m.MapAnon(2);
            m.Process.WriteBytes(a + Page - 4, Bytes("ABCDEFGH"));
            m.Process.ReadBytes(a + Page - 4, read);
        });

        Assert.Equal(Bytes("ABCDEFGH"), read);
    }

    [Fact]
    public void Write_ReadOnlyMapping_ThrowsSegmentationFault()
    {
        using var m = TestMachine.Create();

        var ex = Assert.Throws<SegmentationFaultException>(() => m.Run(() =>
        {
            ulong a = m.MapAnon(1, Prot.Read);
            m.Process.WriteInt32(a, 1);
        }));

        Assert.True(ex.IsWrite && ex.Outcome == VmFaultResult.SigSegv, ex.Message);
    }

    [Fact]
    public void Read_ProtNoneMapping_ThrowsSegmentationFault()
    {
        using var m = TestMachine.Create();

        Assert.Throws<SegmentationFaultException>(() => m.Run(() =>
        {
            ulong a = m.MapAnon(1, Prot.None);
            m.Process.ReadInt32(a);
        }));
    }

    [Fact]
    public void Read_AfterMunmap_ThrowsSegmentationFault()
    {
        using var m = TestMachine.Create();
        ulong a = 0;

        var ex = Assert.Throws<SegmentationFaultException>(() => m.Run(() =>
        {
            a = m.MapAnon(1);
            m.Process.WriteInt32(a, 1);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a, Page));
            m.Process.ReadInt32(a);
        }));

        Assert.Equal(a, ex.Address);
    }

    [Fact]
    public void Read_AddressNeverMapped_ThrowsSegmentationFault()
    {
        using var m = TestMachine.Create();

        Assert.Throws<SegmentationFaultException>(() => m.Run(() => m.Process.ReadInt32(0x1000_0000)));
    }

    [Fact]
    public void Read_SharedFileMapping_ShowsFileContents()
    {
        using var m = TestMachine.Create();
        var read = new byte[5];

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Write(Bytes("hello"), Page + 10));
            ulong a = m.Process.Map(2 * Page, Prot.Read, MapFlags.Shared, file);
            m.Process.ReadBytes(a + Page + 10, read);
        });

        Assert.Equal(Bytes("hello"), read);
    }

    [Fact]
    public void Read_PrivateFileMappingAtOffset_ShowsFileContentsFromOffset()
    {
        using var m = TestMachine.Create();
        var read = new byte[5];

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Write(Bytes("world"), 2 * Page));
            ulong a = m.Process.Map(Page, Prot.Read, MapFlags.Private, file, offset: 2 * Page);
            m.Process.ReadBytes(a, read);
        });

        Assert.Equal(Bytes("world"), read);
    }

    [Fact]
    public void Write_PrivateFileMapping_FileUnchanged()
    {
        using var m = TestMachine.Create();
        var fromFile = new byte[5];

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Write(Bytes("hello"), 0));
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Private, file);
            m.Process.WriteBytes(a, Bytes("HELLO"));
            Assert.Equal(Errno.Ok, file.Read(fromFile, 0, out _));
        });

        Assert.Equal(Bytes("hello"), fromFile);
    }

    [Fact]
    public void Write_PrivateFileMapping_MappingSeesOwnWrite()
    {
        using var m = TestMachine.Create();
        var read = new byte[5];

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Write(Bytes("hello"), 0));
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Private, file);
            m.Process.ReadBytes(a, read);
            m.Process.WriteBytes(a, Bytes("HELLO"));
            m.Process.ReadBytes(a, read);
        });

        Assert.Equal(Bytes("HELLO"), read);
    }

    [Fact]
    public void Write_SharedFileMapping_FileChanged()
    {
        using var m = TestMachine.Create();
        var fromFile = new byte[5];

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Write(Bytes("hello"), 0));
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Shared, file);
            m.Process.WriteBytes(a, Bytes("HELLO"));
            Assert.Equal(Errno.Ok, file.Read(fromFile, 0, out _));
        });

        Assert.Equal(Bytes("HELLO"), fromFile);
    }

    [Fact]
    public void Write_SharedFileMappingInOneProcess_VisibleToAnotherProcessMappingTheFile()
    {
        using var m = TestMachine.Create();
        int seen = 0;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(Page));
            var other = m.Kernel.CreateProcess("other");
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Shared, file);
            ulong b = other.Map(Page, Prot.ReadWrite, MapFlags.Shared, file);
            m.Process.WriteInt32(a, 99);
            seen = other.ReadInt32(b);
        });

        Assert.Equal(99, seen);
    }

    [Fact]
    public void Read_FileMappingBeyondEndOfFile_ThrowsSigBus()
    {
        using var m = TestMachine.Create();

        var ex = Assert.Throws<SegmentationFaultException>(() => m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Write(Bytes("x"), 0));
            ulong a = m.Process.Map(2 * Page, Prot.Read, MapFlags.Shared, file);
            m.Process.ReadInt32(a + Page);
        }));

        Assert.Equal(VmFaultResult.SigBus, ex.Outcome);
    }

    [Fact]
    public void Read_SharedFileMapping_MapsPageReadOnlyUntilWritten()
    {
        using var m = TestMachine.Create();
        Pte pte = default;

        m.Run(() =>
        {
            var file = m.Kernel.CreateTmpFile();
            Assert.Equal(Errno.Ok, file.Truncate(Page));
            ulong a = m.Process.Map(Page, Prot.ReadWrite, MapFlags.Shared, file);
            m.Process.ReadInt32(a);
            pte = m.Mm.GetPte(a);
        });

        Assert.True(pte.IsPresent && !pte.IsWritable, $"expected a read-only entry for dirty tracking, got {pte}");
    }

    [Fact]
    public void AtomicAdd64_TwoAdds_ReturnsPreviousValueAndAccumulates()
    {
        using var m = TestMachine.Create();
        long first = -1, second = -1;

        m.Run(() =>
        {
            ulong a = m.MapAnon(1);
            first = m.Process.AtomicAdd64(a + 8, 5);
            second = m.Process.AtomicAdd64(a + 8, 3);
        });

        Assert.Equal((0L, 5L), (first, second));
    }

    [Fact]
    public void AtomicAdd64_UnalignedAddress_ThrowsArgumentException()
    {
        using var m = TestMachine.Create();

        Assert.Throws<ArgumentException>(() => m.Run(() => m.Process.AtomicAdd64(m.MapAnon(1) + 4, 1)));
    }

    [Fact]
    public void ReadBytes_CrossingIntoUnmappedPage_ReportsFirstInaccessibleAddress()
    {
        using var m = TestMachine.Create();
        ulong a = 0;

        var ex = Assert.Throws<SegmentationFaultException>(() => m.Run(() =>
        {
            a = m.MapAnon(2);
            Assert.Equal(Errno.Ok, m.Mm.Munmap(a + Page, Page));
            m.Process.ReadBytes(a + Page - 4, new byte[8]);
        }));

        Assert.Equal(a + Page, ex.Address);
    }
}
