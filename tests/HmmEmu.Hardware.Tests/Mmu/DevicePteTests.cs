using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;

namespace HmmEmu.Hardware.Tests.Mmu;

public sealed class DevicePteTests
{
    [Theory]
    [InlineData(Aperture.System, 0x1234_5000UL, PtePermissions.Read)]
    [InlineData(Aperture.Vram, 0x000F_FFFF_FFFF_F000UL, PtePermissions.ReadWriteAtomic)]
    [InlineData(Aperture.System, 0UL, PtePermissions.Write)]
    [InlineData(Aperture.Vram, 0x20_0000UL, PtePermissions.None)]
    public void Leaf_EncodeThenDecode_ReturnsEveryField(Aperture aperture, ulong address, PtePermissions permissions)
    {
        var pte = DevicePte.Leaf(aperture, address, permissions);
        var decoded = new DevicePte(pte.Value);

        Assert.True(decoded.IsValid);
        Assert.True(decoded.IsLeaf);
        Assert.False(decoded.IsTable);
        Assert.False(decoded.HasReservedBits);
        Assert.Equal(aperture, decoded.Aperture);
        Assert.Equal(address, decoded.Address);
        Assert.Equal(address >> 12, decoded.Pfn);
        Assert.Equal(permissions, decoded.Permissions);
    }

    [Fact]
    public void Leaf_BitLayout_MatchesTheDocumentedFormat()
    {
        var pte = DevicePte.Leaf(Aperture.Vram, 0xABC_D000, PtePermissions.Read | PtePermissions.Atomic);

        // V(0) R(1) A(3) L(4) AP(5), address in 51:12.
        Assert.Equal(0xABC_D000UL | 0b11_1011UL, pte.Value);
    }

    [Fact]
    public void Table_EncodeThenDecode_IsValidNonLeafWithoutRights()
    {
        var pte = new DevicePte(DevicePte.Table(Aperture.System, 0x7_7000).Value);

        Assert.True(pte.IsTable);
        Assert.False(pte.IsLeaf);
        Assert.Equal(PtePermissions.None, pte.Permissions);
        Assert.Equal(Aperture.System, pte.Aperture);
        Assert.Equal(0x7_7000UL, pte.Address);
        Assert.Equal(DevicePte.ValidBit | 0x7_7000UL, pte.Value);
    }

    [Theory]
    [InlineData(6)]
    [InlineData(11)]
    [InlineData(52)]
    [InlineData(63)]
    public void HasReservedBits_ReservedBitSet_IsTrue(int bit)
    {
        var pte = new DevicePte(DevicePte.Leaf(Aperture.System, 0x1000, PtePermissions.Read).Value | (1UL << bit));

        Assert.True(pte.HasReservedBits);
    }

    [Fact]
    public void Leaf_UnalignedAddress_ThrowsNamingTheRule()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => DevicePte.Leaf(Aperture.System, 0x1234, PtePermissions.Read));

        Assert.Contains("4 KiB aligned", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WithPermissions_ReplacesOnlyTheRights()
    {
        var pte = DevicePte.Leaf(Aperture.Vram, 0x5000, PtePermissions.ReadWriteAtomic);

        var ro = pte.WithPermissions(PtePermissions.Read);

        Assert.Equal(PtePermissions.Read, ro.Permissions);
        Assert.Equal(pte.Value & ~DevicePte.PermissionMask, ro.Value & ~DevicePte.PermissionMask);
    }

    [Fact]
    public void Invalid_IsNotValid()
    {
        Assert.False(DevicePte.Invalid.IsValid);
        Assert.False(DevicePte.Invalid.IsLeaf);
        Assert.False(DevicePte.Invalid.IsTable);
    }

    [Fact]
    public void IndexOf_EachLevel_SelectsItsNineBits()
    {
        ulong va = (3UL << 39) | (5UL << 30) | (7UL << 21) | (11UL << 12) | 0x123;

        Assert.Equal(3, DevicePageTable.IndexOf(4, va));
        Assert.Equal(5, DevicePageTable.IndexOf(3, va));
        Assert.Equal(7, DevicePageTable.IndexOf(2, va));
        Assert.Equal(11, DevicePageTable.IndexOf(1, va));
        Assert.Equal(0x9000UL + (11 * 8), DevicePageTable.EntryAddress(0x9000, 1, va));
    }
}
