using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Mmu;

/// <summary>A kernel with 16 MiB of RAM, 4 MiB of VRAM, shared page-table roots, and helpers that build device page tables.</summary>
internal sealed class MmuTestMachine : IDisposable
{
    private ulong _nextVram;

    public MmuTestMachine(ulong seed = 1, SchedulerMode mode = SchedulerMode.Deterministic)
    {
        Kernel = new HostKernel(KernelOptions.For(seed, mode) with { RamBytes = 16UL << 20 });
        System = new SystemMemoryPort(Kernel.Memory);
        Vram = new VramPort(4UL << 20);
        Roots = new PageTableRoots(16);
    }

    public HostKernel Kernel { get; }

    public Scheduler Scheduler => Kernel.Scheduler;

    public SystemMemoryPort System { get; }

    public VramPort Vram { get; }

    public PageTableRoots Roots { get; }

    public DeviceMmu CreateMmu(DeviceMmuOptions? options = null) => new(Scheduler, Roots, System, Vram, options);

    public PageTableWalker CreateWalker(ulong levelNs = PageTableWalker.DefaultLevelNs) => new(System, Vram, Scheduler, levelNs);

    public IMemoryPort Port(Aperture aperture) => aperture == Aperture.System ? System : Vram;

    /// <summary>A zeroed 4 KiB page in <paramref name="where"/>; returns its address.</summary>
    public ulong AllocPage(Aperture where = Aperture.System)
    {
        if (where == Aperture.Vram)
        {
            ulong a = _nextVram;
            _nextVram += 4096;
            return a;
        }
        Assert.Equal(Errno.Ok, Kernel.Memory.AllocPage(Gfp.Kernel | Gfp.Zero, out ulong pfn));
        return pfn << PhysicalMemory.PageShift;
    }

    /// <summary>Gives <paramref name="asid"/> an empty root table in <paramref name="tables"/>.</summary>
    public void CreateRoot(ushort asid, Aperture tables = Aperture.System) =>
        Roots[asid] = DevicePte.Table(tables, AllocPage(tables));

    /// <summary>Writes <paramref name="leaf"/> for <paramref name="va"/> at <paramref name="leafLevel"/>, creating tables (in the root's aperture) on the way.</summary>
    public void Map(ushort asid, ulong va, DevicePte leaf, int leafLevel = 1)
    {
        var table = Roots[asid];
        Assert.True(table.IsTable, "create the root first");
        for (int level = DevicePageTable.Levels; level > leafLevel; level--)
        {
            var port = Port(table.Aperture);
            ulong ea = DevicePageTable.EntryAddress(table.Address, level, va);
            Assert.True(port.TryReadUInt64(ea, out ulong raw));
            var entry = new DevicePte(raw);
            if (!entry.IsValid)
            {
                entry = DevicePte.Table(table.Aperture, AllocPage(table.Aperture));
                Assert.True(port.TryWriteUInt64(ea, entry.Value));
            }
            table = entry;
        }
        Assert.True(Port(table.Aperture).TryWriteUInt64(DevicePageTable.EntryAddress(table.Address, leafLevel, va), leaf.Value));
    }

    /// <summary>Overwrites the existing entry for <paramref name="va"/> at <paramref name="level"/> with <paramref name="raw"/>.</summary>
    public void WriteEntry(ushort asid, ulong va, int level, ulong raw)
    {
        var table = Roots[asid];
        for (int l = DevicePageTable.Levels; l > level; l--)
        {
            Assert.True(Port(table.Aperture).TryReadUInt64(DevicePageTable.EntryAddress(table.Address, l, va), out ulong e));
            table = new DevicePte(e);
            Assert.True(table.IsTable, $"no table at level {l - 1} for 0x{va:x}");
        }
        Assert.True(Port(table.Aperture).TryWriteUInt64(DevicePageTable.EntryAddress(table.Address, level, va), raw));
    }

    /// <summary>A read-write 4 KiB mapping of <paramref name="va"/> to a fresh system page; returns the page address.</summary>
    public ulong MapNewPage(ushort asid, ulong va, PtePermissions permissions = PtePermissions.ReadWrite)
    {
        ulong page = AllocPage();
        Map(asid, va, DevicePte.Leaf(Aperture.System, page, permissions));
        return page;
    }

    public void Dispose() => Kernel.Dispose();
}
