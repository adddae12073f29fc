using System.Buffers.Binary;

namespace HmmEmu.Rnic.Tests;

/// <summary>MR keys (index &lt;&lt; 8 | key byte, new key byte on re-registration) and MTT entries.</summary>
public sealed class KeyAndMttTests
{
    [Fact]
    public void Key_Compose_PutsIndexAboveKeyByte()
    {
        var key = RnicKey.Compose(0x12_3456, 0x9A);
        Assert.Equal(0x1234_569Au, key.Value);
        Assert.Equal(0x12_3456u, key.Index);
        Assert.Equal(0x9A, key.KeyByte);
    }

    [Fact]
    public void Key_Split_RecoversIndexAndKeyByte()
    {
        var key = new RnicKey(0xFFFF_FF01);
        Assert.Equal(RnicKey.MaxIndex, key.Index);
        Assert.Equal(0x01, key.KeyByte);
        Assert.Equal(key, RnicKey.Compose(key.Index, key.KeyByte));
    }

    [Fact]
    public void Key_IndexOver24Bits_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => RnicKey.Compose(0x100_0000, 0));

    [Fact]
    public void Key_Reregistered_KeepsIndexAndChangesKeyByte()
    {
        var first = RnicKey.Compose(7, 0x41);
        var second = first.Reregistered();
        Assert.Equal(first.Index, second.Index);
        Assert.NotEqual(first.KeyByte, second.KeyByte);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void Key_NextKeyByte_DiffersForEveryByteIncludingWrap()
    {
        for (int b = 0; b < 256; b++)
            Assert.NotEqual((byte)b, RnicKey.NextKeyByte((byte)b));
        Assert.Equal(0, RnicKey.NextKeyByte(0xFF));
    }

    [Fact]
    public void MttEntry_Create_SetsValidWritableAndAddress()
    {
        var e = RnicMttEntry.Create(0x0000_0012_3456_7000, writable: true);
        Assert.True(e.IsValid);
        Assert.True(e.IsWritable);
        Assert.Equal(0x0000_0012_3456_7000UL, e.PageAddress);
        Assert.True(e.ReservedIsZero);

        var b = new byte[8];
        e.Write(b);
        Assert.Equal(0x0000_0012_3456_7003UL, BinaryPrimitives.ReadUInt64LittleEndian(b));
        Assert.Equal(e, RnicMttEntry.Read(b));
    }

    [Fact]
    public void MttEntry_ReadOnly_HasValidWithoutWritable()
    {
        var e = RnicMttEntry.Create(0x5000, writable: false);
        Assert.Equal(0x5001UL, e.Value);
        Assert.False(e.IsWritable);
    }

    [Fact]
    public void MttEntry_Invalid_IsZero()
    {
        Assert.Equal(0UL, RnicMttEntry.Invalid.Value);
        Assert.False(RnicMttEntry.Invalid.IsValid);
    }

    [Fact]
    public void MttEntry_UnalignedAddress_Throws() =>
        Assert.Throws<ArgumentException>(() => RnicMttEntry.Create(0x5008, writable: true));

    [Fact]
    public void MttEntry_ReservedBitSet_ReservedIsZeroFalse() =>
        Assert.False(new RnicMttEntry(0x5000 | 1 | (1 << 5)).ReservedIsZero);

    [Theory]
    [InlineData(0x1000UL, 0x1000UL, 1UL)]
    [InlineData(0x1FFFUL, 2UL, 2UL)]
    [InlineData(0x1800UL, 0x1000UL, 2UL)]
    [InlineData(0x1000UL, 0UL, 0UL)]
    [InlineData(0x1234UL, 0x10_0000UL, 257UL)]
    public void MttEntry_PagesSpanned_CountsTouchedPages(ulong iova, ulong length, ulong expected) =>
        Assert.Equal(expected, RnicMttEntry.PagesSpanned(iova, length));

    [Fact]
    public void MttEntry_IndexOf_CountsFromTheMrFirstPage()
    {
        Assert.Equal(0UL, RnicMttEntry.IndexOf(0x1800, 0x1FFF));
        Assert.Equal(1UL, RnicMttEntry.IndexOf(0x1800, 0x2000));
        Assert.Equal(3UL, RnicMttEntry.IndexOf(0x1800, 0x4800));
    }
}
