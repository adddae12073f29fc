using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Hardware.Tests.Mmu;

public sealed class PageTableWalkerTests
{
    private const ushort Asid = 1;
    private const ulong Va = (1UL << 39) | (2UL << 30) | (3UL << 21) | (4UL << 12);

    [Fact]
    public void Walk_FourLevelsInSystemRam_ReturnsTheSystemPage()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        ulong page = m.MapNewPage(Asid, Va);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va + 0x10, Access.Read);

        Assert.Equal(TranslationStatus.Ok, r.Status);
        Assert.Equal(1, r.Level);
        Assert.Equal(4, r.Reads);
        Assert.Equal(Aperture.System, r.Page.Aperture);
        Assert.Equal(page, r.Page.Address);
    }

    [Fact]
    public void Walk_TablesAndPageInVram_ReturnsTheVramPage()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid, Aperture.Vram);
        ulong page = m.AllocPage(Aperture.Vram);
        m.Map(Asid, Va, DevicePte.Leaf(Aperture.Vram, page, PtePermissions.Read));

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.Ok, r.Status);
        Assert.Equal(Aperture.Vram, r.EntryAperture);
        Assert.Equal(Aperture.Vram, r.Page.Aperture);
        Assert.Equal(page, r.Page.Address);
    }

    [Fact]
    public void Walk_LargeLeafAtLevel2_ReturnsThe4KiBPageInsideIt()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        ulong large = 2UL << 20;   // VRAM offset 2 MiB, 2 MiB aligned
        m.Map(Asid, Va, DevicePte.Leaf(Aperture.Vram, large, PtePermissions.ReadWrite), leafLevel: 2);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Write);

        Assert.Equal(TranslationStatus.Ok, r.Status);
        Assert.Equal(2, r.Level);
        Assert.Equal(3, r.Reads);
        Assert.Equal(large + (4UL << 12), r.Page.Address);
    }

    [Fact]
    public void Walk_RootNotSet_IsNotPresentAtLevel0()
    {
        using var m = new MmuTestMachine();

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.NotPresent, r.Status);
        Assert.Equal(0, r.Level);
        Assert.Equal(0, r.Reads);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(3)]
    [InlineData(2)]
    [InlineData(1)]
    public void Walk_EntryNotValidAtLevel_IsNotPresentAtThatLevel(int level)
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va);
        m.WriteEntry(Asid, Va, level, 0xFFFF_0000_0000_0000);   // V clear: the other bits are ignored

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.NotPresent, r.Status);
        Assert.Equal(level, r.Level);
        Assert.Equal(5 - level, r.Reads);
        Assert.False(r.HasPage);
    }

    [Fact]
    public void Walk_WriteToReadOnlyPage_IsPermissionWithThePage()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        ulong page = m.MapNewPage(Asid, Va, PtePermissions.Read);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Write);

        Assert.Equal(TranslationStatus.Permission, r.Status);
        Assert.True(r.HasPage);
        Assert.Equal(page, r.Page.Address);
    }

    [Fact]
    public void Walk_ReadOfWriteOnlyPage_IsPermission()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va, PtePermissions.Write);
        var walker = m.CreateWalker();

        Assert.Equal(TranslationStatus.Ok, walker.Walk(m.Roots[Asid], Va, Access.Write).Status);
        Assert.Equal(TranslationStatus.Permission, walker.Walk(m.Roots[Asid], Va, Access.Read).Status);
    }

    [Fact]
    public void Walk_AtomicWithoutA_IsPermission()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va, PtePermissions.ReadWrite);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Atomic);

        Assert.Equal(TranslationStatus.Permission, r.Status);
    }

    [Fact]
    public void Walk_AtomicWithAButWithoutW_IsPermission()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va, PtePermissions.Read | PtePermissions.Atomic);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Atomic);

        Assert.Equal(TranslationStatus.Permission, r.Status);
    }

    [Fact]
    public void Walk_AtomicWithReadWriteAtomic_IsOk()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va, PtePermissions.ReadWriteAtomic);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Atomic);

        Assert.Equal(TranslationStatus.Ok, r.Status);
    }

    [Theory]
    [InlineData(4, 6)]
    [InlineData(3, 11)]
    [InlineData(2, 52)]
    [InlineData(1, 63)]
    public void Walk_ReservedBitSetInEntry_IsBadTableAtThatLevel(int level, int bit)
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va);
        var table = m.Roots[Asid];
        for (int l = 4; l > level; l--)
        {
            Assert.True(m.System.TryReadUInt64(DevicePageTable.EntryAddress(table.Address, l, Va), out ulong e));
            table = new DevicePte(e);
        }
        ulong ea = DevicePageTable.EntryAddress(table.Address, level, Va);
        Assert.True(m.System.TryReadUInt64(ea, out ulong raw));
        m.WriteEntry(Asid, Va, level, raw | (1UL << bit));

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.BadTable, r.Status);
        Assert.Equal(level, r.Level);
        Assert.Equal(ea, r.EntryAddress);
    }

    [Fact]
    public void Walk_RootWithReservedBit_IsBadTableAtLevel0()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.Roots[Asid] = new DevicePte(m.Roots[Asid].Value | (1UL << 60));

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.BadTable, r.Status);
        Assert.Equal(0, r.Level);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(3)]
    public void Walk_LeafAboveLevel2_IsBadTable(int level)
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.Map(Asid, Va, DevicePte.Leaf(Aperture.System, 0, PtePermissions.Read), leafLevel: level);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.BadTable, r.Status);
        Assert.Equal(level, r.Level);
    }

    [Fact]
    public void Walk_TablePointerAtLevel1_IsBadTable()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va);
        m.WriteEntry(Asid, Va, 1, DevicePte.Table(Aperture.System, 0x1000).Value);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.BadTable, r.Status);
        Assert.Equal(1, r.Level);
    }

    [Fact]
    public void Walk_MisalignedLargeLeaf_IsBadTable()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.Map(Asid, Va, DevicePte.Leaf(Aperture.Vram, 0x1000, PtePermissions.Read), leafLevel: 2);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.BadTable, r.Status);
        Assert.Equal(2, r.Level);
    }

    [Fact]
    public void Walk_TablePointerWithRights_IsBadTable()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va);
        var table = m.Roots[Asid];
        Assert.True(m.System.TryReadUInt64(DevicePageTable.EntryAddress(table.Address, 4, Va), out ulong l4));
        m.WriteEntry(Asid, Va, 4, l4 | DevicePte.ReadBit);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.BadTable, r.Status);
        Assert.Equal(4, r.Level);
    }

    [Fact]
    public void Walk_TablePointerOutsideRam_IsBadTableAtThePointingEntry()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va);
        m.WriteEntry(Asid, Va, 3, DevicePte.Table(Aperture.System, m.System.Size).Value);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.BadTable, r.Status);
        Assert.Equal(3, r.Level);
        Assert.Equal(m.System.Size, r.Entry.Address);
        Assert.Equal(2, r.Reads);
    }

    [Fact]
    public void Walk_RootOutsideVram_IsBadTableAtLevel0()
    {
        using var m = new MmuTestMachine();
        m.Roots[Asid] = DevicePte.Table(Aperture.Vram, m.Vram.Size);

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.BadTable, r.Status);
        Assert.Equal(0, r.Level);
        Assert.Equal(0, r.Reads);
    }

    [Fact]
    public void Walk_TablesInVramOnDeviceWithoutVram_IsBadTable()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid, Aperture.Vram);
        m.Map(Asid, Va, DevicePte.Leaf(Aperture.Vram, 0, PtePermissions.Read));
        var walker = new PageTableWalker(m.System);

        var r = walker.Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.BadTable, r.Status);
    }

    [Fact]
    public void Walk_LeafPastEndOfRam_IsOutOfRange()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.Map(Asid, Va, DevicePte.Leaf(Aperture.System, m.System.Size, PtePermissions.Read));

        var r = m.CreateWalker().Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(TranslationStatus.OutOfRange, r.Status);
        Assert.Equal(1, r.Level);
    }

    [Fact]
    public void Walk_AddressOf48BitsOrMore_IsOutOfRangeWithoutReads()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);

        var r = m.CreateWalker().Walk(m.Roots[Asid], DevicePageTable.VirtualAddressLimit, Access.Read);

        Assert.Equal(TranslationStatus.OutOfRange, r.Status);
        Assert.Equal(0, r.Reads);
    }

    [Fact]
    public void Walk_FourReads_ChargesLevelNsPerRead()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va);
        var walker = m.CreateWalker(levelNs: 7);
        ulong before = m.Kernel.Clock.Now;

        walker.Walk(m.Roots[Asid], Va, Access.Read);

        Assert.Equal(before + (4 * 7), m.Kernel.Clock.Now);
    }

    [Fact]
    public void Walk_Counters_CountWalksFaultsAndReads()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(Asid);
        m.MapNewPage(Asid, Va);
        var walker = m.CreateWalker();

        walker.Walk(m.Roots[Asid], Va, Access.Read);
        walker.Walk(m.Roots[Asid], Va + (1UL << 21), Access.Read);   // not present at level 2

        Assert.Equal(2, walker.Walks);
        Assert.Equal(1, walker.Faults);
        Assert.Equal(4 + 3, walker.EntryReads);
    }

    [Fact]
    public void Walk_EmptyAccess_Throws()
    {
        using var m = new MmuTestMachine();

        Assert.Throws<ArgumentOutOfRangeException>(() => m.CreateWalker().Walk(m.Roots[Asid], Va, 0));
    }
}
