using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Vm;
using HmmEmu.Mirror;

namespace HmmEmu.Conformance.Tests;

// Compound (2 MiB) migration: a transparent huge page moves to device memory and back as one huge page, shows up as a
// PMD mapping on both sides, falls back to 4 KiB pages when a huge allocation fails, and splits when part of it changes.
public sealed class MirrorHugeMigrationTests
{
    private const ulong Page = PhysicalMemory.PageSize;
    private const ulong TwoMeg = 2UL << 20;
    private const int Pages = 512;

    private sealed record Rig(HostKernel Kernel, Process Process, MirrorDevice Device, MirrorFile File, ulong Buffer)
    {
        public Errno Cmd(MirrorIoctl request, ulong addr, ulong npages, out MirrorCommand cmd)
        {
            cmd = new MirrorCommand { Addr = addr, Ptr = Buffer, NPages = npages };
            return File.Ioctl(request, ref cmd);
        }

        // A 2 MiB-aligned THP-enabled anonymous region, written so that a huge page backs it (int i at index i).
        public ulong MapHugeRegion(bool write = true)
        {
            ulong raw = Process.Map(2 * TwoMeg, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong map = (raw + TwoMeg - 1) & ~(TwoMeg - 1);
            Assert.Equal(Errno.Ok, Process.Mm.Madvise(map, TwoMeg, Advice.HugePage));
            if (write)
            {
                var data = new byte[TwoMeg];
                for (int i = 0; i < (int)(TwoMeg / 4); i++)
                    BitConverter.TryWriteBytes(data.AsSpan(i * 4), i);
                Process.WriteBytes(map, data);
            }
            return map;
        }

        public byte[] Snapshot(ulong addr, int npages = Pages)
        {
            Assert.Equal(Errno.Ok, Cmd(MirrorIoctl.Snapshot, addr, (ulong)npages, out _));
            var perm = new byte[npages];
            Process.ReadBytes(Buffer, perm);
            return perm;
        }

        public void AssertData(ulong map, int firstInt = 0, int count = (int)(TwoMeg / 4))
        {
            var bytes = new byte[count * 4];
            Process.ReadBytes(map + (ulong)firstInt * 4, bytes);
            for (int i = 0; i < count; i++)
                Assert.Equal(firstInt + i, BitConverter.ToInt32(bytes, i * 4));
        }
    }

    private static void WithMirror(MemoryType type, Action<Rig> body)
    {
        using var k = new HostKernel(KernelOptions.For(7));
        var dev = new MirrorDevice(k, 0, type);
        var p = k.CreateProcess("thp");
        k.Run(() => p.StartThread("main", () =>
        {
            Assert.Equal(Errno.Ok, dev.Open(out var f));
            ulong buf = p.Map(2 * TwoMeg, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            body(new Rig(k, p, dev, f!, buf));
            f!.Close();
            p.Exit();
        }).Join());
        k.AssertNoWarnings();
        Assert.Equal(MirrorDevice.DevicePages, dev.FreeDevicePages);
        Assert.Equal(0UL, k.Memory.UsedPages);
    }

    [Theory]
    [InlineData(MemoryType.DevicePrivate, SnapshotProt.DevPrivateLocal)]
    [InlineData(MemoryType.DeviceCoherent, SnapshotProt.DevCoherentLocal)]
    public void MigrateToDevice_WholeThp_MovesAsOneHugeDevicePage(MemoryType type, byte local)
    {
        WithMirror(type, r =>
        {
            ulong map = r.MapHugeRegion();
            Assert.All(r.Snapshot(map), b => Assert.Equal(SnapshotProt.Write | SnapshotProt.Pmd, b));

            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, map, Pages, out var cmd));

            Assert.Equal((ulong)Pages, cmd.CPages);
            Assert.All(r.Snapshot(map), b => Assert.Equal(local | SnapshotProt.Write | SnapshotProt.Pmd, b));
            Assert.Equal(MirrorDevice.DevicePages - Pages, r.Device.FreeDevicePages);
            var first = r.Process.Mm.GetPte(map);
            for (ulong i = 0; i < Pages; i++)
                Assert.Equal(first.Pfn + i, r.Process.Mm.GetPte(map + i * Page).Pfn);
        });
    }

    [Fact]
    public void CpuFault_OnDeviceThp_ComesBackAsSystemThpWithItsData()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion();
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, map, Pages, out _));

            r.AssertData(map, 1000, 1);                 // one CPU read faults the whole block back

            Assert.True(r.Process.Mm.GetPte(map).IsHuge);
            Assert.False(r.Kernel.Memory.IsDevicePage(r.Process.Mm.GetPte(map + TwoMeg - Page).Pfn));
            Assert.All(r.Snapshot(map), b => Assert.Equal(SnapshotProt.Write | SnapshotProt.Pmd, b));
            r.AssertData(map);
            Assert.Equal(MirrorDevice.DevicePages, r.Device.FreeDevicePages);
        });
    }

    [Fact]
    public void MigrateToDevice_HugeAllocationFails_FallsBackToSmallPagesWithSameData()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion();
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.Flags, 0, MirrorFile.FlagFailAlloc, out _));

            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, map, Pages, out var cmd));

            Assert.Equal((ulong)Pages, cmd.CPages);
            Assert.Equal(0UL, r.File.Flags & MirrorFile.FlagFailAlloc);
            Assert.All(r.Snapshot(map), b => Assert.Equal(SnapshotProt.DevPrivateLocal | SnapshotProt.Write, b));
            Assert.False(r.Process.Mm.GetPte(map).IsHuge);
            r.AssertData(map);
        });
    }

    [Fact]
    public void MigrateToSystem_HugeAllocationFails_SplitsAndKeepsData()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion();
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, map, Pages, out _));
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.Flags, 0, MirrorFile.FlagFailAlloc, out _));

            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToSystem, map, Pages, out var cmd));

            Assert.Equal((ulong)Pages, cmd.CPages);
            Assert.All(r.Snapshot(map), b => Assert.Equal(SnapshotProt.Write, b));
            r.AssertData(map);
        });
    }

    [Fact]
    public void MigrateToSystem_WholeDeviceThp_ReturnsAsSystemThp()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion();
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, map, Pages, out _));

            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToSystem, map, Pages, out var cmd));

            Assert.Equal(1UL, cmd.CPages);              // test_hmm counts migrated src entries: a 2 MiB page is one
            Assert.All(r.Snapshot(map), b => Assert.Equal(SnapshotProt.Write | SnapshotProt.Pmd, b));
            r.AssertData(map);
        });
    }

    [Fact]
    public void PartialMunmap_OfDeviceThp_SplitsAndKeepsTheRest()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion();
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, map, Pages, out _));

            Assert.Equal(Errno.Ok, r.Process.Mm.Munmap(map + TwoMeg / 2, TwoMeg / 4));

            var perm = r.Snapshot(map);
            Assert.All(perm[..256], b => Assert.Equal(SnapshotProt.DevPrivateLocal | SnapshotProt.Write, b));
            Assert.All(perm[256..384], b => Assert.Equal(SnapshotProt.Error, b));
            Assert.All(perm[384..], b => Assert.Equal(SnapshotProt.DevPrivateLocal | SnapshotProt.Write, b));
            Assert.Equal(MirrorDevice.DevicePages - 384, r.Device.FreeDevicePages);
            r.AssertData(map, 0, 256 * 1024);
            r.AssertData(map, 384 * 1024, 128 * 1024);
        });
    }

    [Fact]
    public void ReadFault_OnEmptyThpRegion_MapsTheHugeZeroPage()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion(write: false);

            Assert.Equal(0, r.Process.ReadInt32(map + 4096));

            Assert.All(r.Snapshot(map), b => Assert.Equal(SnapshotProt.Zero | SnapshotProt.Read | SnapshotProt.Pmd, b));
            r.Process.WriteInt32(map, 5);               // a write splits it and gets one small page
            var perm = r.Snapshot(map);
            Assert.Equal(SnapshotProt.Write, perm[0]);
            Assert.All(perm[1..], b => Assert.Equal(SnapshotProt.Zero | SnapshotProt.Read, b));
        });
    }

    [Fact]
    public void MigrateToDevice_HugeZeroPage_BecomesOneZeroedDeviceThp()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion(write: false);
            Assert.Equal(0, r.Process.ReadInt32(map));

            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, map, Pages, out var cmd));

            Assert.Equal((ulong)Pages, cmd.CPages);
            Assert.All(r.Snapshot(map), b => Assert.Equal(SnapshotProt.DevPrivateLocal | SnapshotProt.Write | SnapshotProt.Pmd, b));   // VM_WRITE: no source to inherit from
            Assert.Equal(0, r.Process.ReadInt32(map + TwoMeg - 4));
        });
    }

    [Fact]
    public void MigrateToDevice_ThpWithPinnedSubpage_SplitsAndLeavesThePinnedPage()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion();
            Span<ulong> pinned = stackalloc ulong[1];
            Assert.Equal(Errno.Ok, r.Process.Mm.GetUserPages(map + 7 * Page, GupFlags.None, pinned, out int n));
            Assert.Equal(1, n);

            // The pinned page stays behind, so reading the range back through the device fails (as in test_hmm).
            Assert.Equal(Errno.ENOENT, r.Cmd(MirrorIoctl.MigrateToDevice, map, Pages, out _));

            var perm = r.Snapshot(map);
            Assert.Equal(SnapshotProt.Write, perm[7]);
            Assert.Equal(pinned[0], r.Process.Mm.GetPte(map + 7 * Page).Pfn);
            Assert.Equal(Pages - 1, perm.Count(b => b == (SnapshotProt.DevPrivateLocal | SnapshotProt.Write)));
            r.Kernel.Memory.PutPage(pinned[0]);
            r.AssertData(map);
        });
    }

    [Fact]
    public void Eviction_OfDeviceThp_SplitsItBackToSmallSystemPages()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion();
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, map, Pages, out _));

            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.Release, map, Pages, out _));

            Assert.All(r.Snapshot(map), b => Assert.Equal(SnapshotProt.Write, b));
            Assert.Equal(MirrorDevice.DevicePages, r.Device.FreeDevicePages);
            r.AssertData(map);
        });
    }

    [Fact]
    public void VmaSetup_CompoundOnEmptyAlignedBlock_CollectsOneCompoundEntry()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion(write: false);
            var mm = r.Process.Mm;
            using (mm.MmapReadLock())
            {
                var args = NewArgs(r, map, MigrateSelect.System | MigrateSelect.Compound);

                Assert.Equal(Errno.Ok, Migrate.VmaSetup(args));

                Assert.Equal(1UL, args.CPages);
                Assert.Equal(MigratePfn.Migrate | MigratePfn.Compound, args.Src![0]);
                Assert.All(args.Src[1..], e => Assert.Equal(0UL, e));
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
            }
            Assert.True(mm.GetPte(map).IsNone);
        });
    }

    [Fact]
    public void VmaPages_CompoundSourceWithSmallDestinations_SplitsTheSource()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion();
            var mm = r.Process.Mm;
            var mem = r.Kernel.Memory;
            ulong s0 = mm.GetPte(map).Pfn;
            using (mm.MmapReadLock())
            {
                var args = NewArgs(r, map, MigrateSelect.System | MigrateSelect.Compound);
                Assert.Equal(Errno.Ok, Migrate.VmaSetup(args));
                Assert.Equal(MigratePfn.From(s0) | MigratePfn.Migrate | MigratePfn.Compound | MigratePfn.Write, args.Src![0]);
                Assert.True(mm.GetPte(map + Page).IsHuge);
                for (int i = 0; i < Pages; i++)
                {
                    Assert.Equal(Errno.Ok, mem.AllocPage(Gfp.Kernel, out ulong d));
                    mem.LockPage(d);
                    mem.CopyPage(d, s0 + (ulong)i);
                    args.Dst![i] = MigratePfn.From(d) | MigratePfn.Write;
                }

                Migrate.VmaPages(args);

                for (int i = 0; i < Pages; i++)
                    Assert.Equal(MigratePfn.From(s0 + (ulong)i) | MigratePfn.Migrate | MigratePfn.Write, args.Src[i]);
                Assert.False(mm.GetPte(map + Page).IsHuge);
                Migrate.VmaFinalize(args);
            }
            Assert.False(mm.GetPte(map).IsHuge);
            Assert.NotEqual(s0, mm.GetPte(map).Pfn);
            r.AssertData(map);
        });
    }

    [Fact]
    public void VmaPages_CompoundDestinationForSmallSource_IsNotMigrated()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion();
            var mm = r.Process.Mm;
            var mem = r.Kernel.Memory;
            ulong s0 = mm.GetPte(map).Pfn;
            using (mm.MmapReadLock())
            {
                var args = NewArgs(r, map, MigrateSelect.System);   // no COMPOUND: collected page by page
                Assert.Equal(Errno.Ok, Migrate.VmaSetup(args));
                Assert.Equal((ulong)Pages, args.CPages);
                Assert.Equal(Errno.Ok, mem.AllocContiguous(9, Gfp.Kernel, out ulong d0));
                for (ulong j = 0; j < Pages; j++)
                    mem.LockPage(d0 + j);
                args.Dst![0] = MigratePfn.From(d0) | MigratePfn.Compound;

                Migrate.VmaPages(args);

                Assert.Equal(0UL, args.Src![0] & MigratePfn.Migrate);
                args.Dst[0] = 0;
                Migrate.VmaFinalize(args);
                for (ulong j = 0; j < Pages; j++)
                {
                    mem.UnlockPage(d0 + j);
                    mem.PutPage(d0 + j);
                }
            }
            Assert.Equal(s0, mm.GetPte(map).Pfn);
            r.AssertData(map);
        });
    }

    [Fact]
    public void VmaPages_CompoundDestinationAtUnalignedAddress_Throws()
    {
        WithMirror(MemoryType.DevicePrivate, r =>
        {
            ulong map = r.MapHugeRegion(write: false);
            var mm = r.Process.Mm;
            var mem = r.Kernel.Memory;
            using (mm.MmapReadLock())
            {
                var args = NewArgs(r, map, MigrateSelect.System);
                Assert.Equal(Errno.Ok, Migrate.VmaSetup(args));
                Assert.Equal(Errno.Ok, mem.AllocContiguous(9, Gfp.Kernel, out ulong d0));
                for (ulong j = 0; j < Pages; j++)
                    mem.LockPage(d0 + j);
                args.Dst![1] = MigratePfn.From(d0) | MigratePfn.Compound;

                var ex = Assert.Throws<KernelRuleViolationException>(() => Migrate.VmaPages(args));

                Assert.Contains("2 MiB aligned", ex.Message, StringComparison.Ordinal);
                args.Dst[1] = 0;
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
                for (ulong j = 0; j < Pages; j++)
                {
                    mem.UnlockPage(d0 + j);
                    mem.PutPage(d0 + j);
                }
            }
        });
    }

    private static MigrateVma NewArgs(Rig r, ulong map, MigrateSelect select) => new()
    {
        Vma = r.Process.Mm.VmaLookup(map), Start = map, End = map + TwoMeg, Src = new ulong[Pages], Dst = new ulong[Pages],
        PgmapOwner = r.Device, Flags = select,
    };
}
