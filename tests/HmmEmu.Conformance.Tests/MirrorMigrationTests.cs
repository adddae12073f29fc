using System.Runtime.InteropServices;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Vm;
using HmmEmu.Mirror;
using HmmEmu.Simulation;
using HmmEmu.Testing.Selftests;

namespace HmmEmu.Conformance.Tests;

// Migration between system memory and the mirror's device-private memory keeps data, dirty state and page
// accounting right, and refuses what the kernel refuses.
public sealed class MirrorMigrationTests
{
    private const ulong Page = PhysicalMemory.PageSize;

    private sealed record Rig(HostKernel Kernel, Process Process, MirrorDevice Device, MirrorFile File)
    {
        public Errno Cmd(MirrorIoctl request, ulong addr, ulong npages, ulong buffer, out MirrorCommand cmd)
        {
            cmd = new MirrorCommand { Addr = addr, Ptr = buffer, NPages = npages };
            return File.Ioctl(request, ref cmd);
        }
    }

    private static void WithMirror(ulong seed, Action<Rig> body)
    {
        using var k = new HostKernel(KernelOptions.For(seed));
        var dev = new MirrorDevice(k, 0);
        var p = k.CreateProcess("migrate");
        k.Run(() => p.StartThread("main", () =>
        {
            Assert.Equal(Errno.Ok, dev.Open(out var f));
            body(new Rig(k, p, dev, f!));
            f!.Close();
            p.Exit();
        }).Join());
        k.AssertNoWarnings();
        Assert.Equal(MirrorDevice.DevicePages, dev.FreeDevicePages);
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(3UL)]
    public void RandomMigrationsAndWrites_DataAlwaysMatchesModel(ulong seed)
    {
        const int pages = 16;
        WithMirror(seed, r =>
        {
            var rnd = r.Kernel.CreateRandom("migration-model");
            var model = new byte[pages * (int)Page];
            ulong a = r.Process.Map(pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong buf = r.Process.Map(pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            for (int step = 0; step < 60; step++)
            {
                int first = rnd.NextInt(pages);
                int count = 1 + rnd.NextInt(pages - first);
                ulong at = a + (ulong)first * Page;
                switch (rnd.NextInt(4))
                {
                    case 0:
                        Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, at, (ulong)count, buf, out _));
                        break;
                    case 1:
                        Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToSystem, at, (ulong)count, buf, out _));
                        break;
                    case 2:
                        int off = first * (int)Page + rnd.NextInt((int)Page - 8);
                        var data = BitConverter.GetBytes(rnd.NextUInt64());
                        r.Process.WriteBytes(a + (ulong)off, data);
                        data.CopyTo(model, off);
                        break;
                    default:
                        Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.Read, at, (ulong)count, buf, out _));
                        var seen = new byte[count * (int)Page];
                        r.Process.ReadBytes(buf, seen);
                        Assert.True(seen.AsSpan().SequenceEqual(model.AsSpan(first * (int)Page, seen.Length)), $"device read differs from the model at step {step} (seed {seed})");
                        break;
                }
            }
            var cpu = new byte[model.Length];
            r.Process.ReadBytes(a, cpu);
            Assert.True(cpu.AsSpan().SequenceEqual(model), $"CPU view differs from the model (seed {seed})");
        });
    }

    [Fact]
    public void MigrateToDevice_PinnedPage_StaysInSystemMemory()
    {
        WithMirror(5, r =>
        {
            ulong a = r.Process.Map(2 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong buf = r.Process.Map(2 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            r.Process.WriteInt32(a, 11);
            r.Process.WriteInt32(a + Page, 22);
            ulong pinned = r.Process.Mm.GetPte(a).Pfn;
            r.Kernel.Memory.GetPage(pinned);       // a long-term pin, as GUP would take

            Assert.Equal(Errno.ENOENT, r.Cmd(MirrorIoctl.MigrateToDevice, a, 2, buf, out _));
            var pte = r.Process.Mm.GetPte(a);
            Assert.True(pte.IsPresent && pte.Pfn == pinned, $"pinned page moved: {pte}");
            Assert.True(r.Process.Mm.GetPte(a + Page).IsDevicePrivate);

            r.Kernel.Memory.PutPage(pinned);
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, a, 2, buf, out var cmd));
            Assert.Equal(2UL, cmd.CPages);
            Assert.Equal(11, r.Process.ReadInt32(a));
        });
    }

    [Fact]
    public void MigrateRoundTrip_DirtyPage_ComesBackDirty()
    {
        WithMirror(6, r =>
        {
            ulong a = r.Process.Map(Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong buf = r.Process.Map(Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            r.Process.WriteInt32(a, 7);
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, a, 1, buf, out _));
            Assert.True(r.Process.Mm.GetPte(a).IsDevicePrivate);
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToSystem, a, 1, buf, out var cmd));
            Assert.Equal(1UL, cmd.CPages);
            var pte = r.Process.Mm.GetPte(a);
            Assert.True(pte.IsPresent && pte.IsWritable, pte.ToString());
            Assert.True(r.Kernel.Memory.HasFlags(pte.Pfn, PageFlags.Dirty), "dirty state lost across migration");
            Assert.Equal(7, r.Process.ReadInt32(a));
        });
    }

    [Fact]
    public void Munmap_MigratedPages_ReturnsDevicePages()
    {
        WithMirror(7, r =>
        {
            ulong a = r.Process.Map(8 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong buf = r.Process.Map(8 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, a, 8, buf, out _));
            Assert.Equal(MirrorDevice.DevicePages - 8, r.Device.FreeDevicePages);
            Assert.Equal(Errno.Ok, r.Process.Mm.Munmap(a, 8 * Page));
            Assert.Equal(MirrorDevice.DevicePages, r.Device.FreeDevicePages);
            Assert.Equal(0, r.File.MappedPages);
        });
    }

    [Fact]
    public void VmaSetup_RangeCrossingVmaEnd_ReturnsEINVALAndChangesNothing()
    {
        WithMirror(8, r =>
        {
            var mm = r.Process.Mm;
            ulong a = r.Process.Map(2 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            r.Process.WriteInt32(a, 1);
            var before = mm.GetPte(a);
            using (mm.MmapReadLock())
            {
                var args = new MigrateVma
                {
                    Vma = mm.VmaLookup(a), Start = a, End = a + 4 * Page, Src = new ulong[4], Dst = new ulong[4],
                    PgmapOwner = r.Device, Flags = MigrateSelect.System,
                };
                Assert.Equal(Errno.EINVAL, Migrate.VmaSetup(args));
                Assert.Throws<InvalidOperationException>(() => Migrate.VmaPages(args));
            }
            Assert.Equal(before, mm.GetPte(a));
            Assert.Equal(1, r.Process.ReadInt32(a));
        });
    }

    [Fact]
    public void VmaPages_UnlockedDestination_ThrowsAndSourceIsRestoredByFinalize()
    {
        WithMirror(9, r =>
        {
            var mm = r.Process.Mm;
            var mem = r.Kernel.Memory;
            ulong a = r.Process.Map(Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            r.Process.WriteInt32(a, 42);
            ulong src = mm.GetPte(a).Pfn;
            using (mm.MmapReadLock())
            {
                var args = new MigrateVma
                {
                    Vma = mm.VmaLookup(a), Start = a, End = a + Page, Src = new ulong[1], Dst = new ulong[1],
                    PgmapOwner = r.Device, Flags = MigrateSelect.System,
                };
                Assert.Equal(Errno.Ok, Migrate.VmaSetup(args));
                Assert.Equal(1UL, args.CPages);
                Assert.True(mm.GetPte(a).IsMigration);
                Assert.Equal(Errno.Ok, mem.AllocPage(Gfp.Kernel, out ulong dst));   // not locked: a driver bug
                args.Dst[0] = MigratePfn.From(dst);
                var ex = Assert.Throws<KernelRuleViolationException>(() => Migrate.VmaPages(args));
                Assert.Contains("not locked", ex.Message, StringComparison.Ordinal);
                args.Dst[0] = 0;
                mem.PutPage(dst);
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
            }
            Assert.Equal(src, mm.GetPte(a).Pfn);
            Assert.Equal(42, r.Process.ReadInt32(a));
            Assert.Equal(1, mem.RefCount(src));
        });
    }

    [Fact]
    public void Runner_TestThatLeaksAPage_FailsTheLeakCheck()
    {
        var leaky = new HmmSelftest("hmm", "hmm_device_private", "leaks_a_page",
            t => t.Kernel.Memory.AllocPage(Gfp.Kernel, out _));
        var r = SelftestRunner.Run(leaky);
        Assert.Equal(SelftestOutcome.Fail, r.Outcome);
        Assert.Contains("leak", r.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MigrateToDevice_ThreadedConcurrentCpuReads_DataIntact()
    {
        for (ulong run = 1; run <= 5; run++)
        {
            using var k = new HostKernel(KernelOptions.For(run, SchedulerMode.Threaded));
            var dev = new MirrorDevice(k, 0);
            var p = k.CreateProcess("race");
            k.Run(() => p.StartThread("main", () =>
            {
                Assert.Equal(Errno.Ok, dev.Open(out var f));
                const int pages = 64;
                ulong a = p.Map(pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
                ulong buf = p.Map(pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
                var ints = Enumerable.Range(0, pages * 1024).ToArray();
                p.WriteBytes(a, MemoryMarshal.AsBytes(ints.AsSpan()));
                var reader = p.StartThread("reader", () =>
                {
                    for (int round = 0; round < 4; round++)
                    {
                        var back = new int[ints.Length];
                        p.ReadBytes(a, MemoryMarshal.AsBytes(back.AsSpan()));
                        Assert.Equal(ints, back);
                    }
                });
                for (int round = 0; round < 4; round++)
                {
                    var cmd = new MirrorCommand { Addr = a, Ptr = buf, NPages = pages };
                    var err = f!.Ioctl(MirrorIoctl.MigrateToDevice, ref cmd);
                    Assert.True(err is Errno.Ok or Errno.ENOENT, $"migrate: {err}");
                }
                reader.Join();
                f!.Close();
                p.Exit();
            }).Join());
            k.AssertNoWarnings();
            Assert.Equal(MirrorDevice.DevicePages, dev.FreeDevicePages);
        }
    }

    [Fact]
    public void Exclusive_UntilCpuTouchesPage_DeviceHoldsAtomicAccess()
    {
        WithMirror(10, r =>
        {
            var mm = r.Process.Mm;
            ulong a = r.Process.Map(3 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong buf = r.Process.Map(3 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            r.Process.WriteInt32(a, 5);
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.Exclusive, a, 3, buf, out var cmd));
            Assert.Equal(3UL, cmd.CPages);
            Assert.True(mm.GetPte(a).IsDeviceExclusive, mm.GetPte(a).ToString());
            Assert.Equal(Errno.EPERM, r.Cmd(MirrorIoctl.CheckExclusive, a, 3, buf, out _));

            Assert.Equal(5, r.Process.ReadInt32(a));            // the CPU takes page 0 back
            Assert.True(mm.GetPte(a).IsPresent && mm.GetPte(a).IsWritable);
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.CheckExclusive, a, 1, buf, out _));
            // dmirror erases [start, end] inclusive of the end page, as test_hmm does, so page 1 went too; page 2 not.
            Assert.Equal(Errno.EPERM, r.Cmd(MirrorIoctl.CheckExclusive, a + 2 * Page, 1, buf, out _));
            r.Process.WriteInt32(a + 2 * Page, 6);
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.CheckExclusive, a, 3, buf, out _));
        });
    }

    [Fact]
    public void Release_MigratedPagesSharedWithChild_EvictedEverywhereDataIntact()
    {
        WithMirror(11, r =>
        {
            const int pages = 4;
            ulong a = r.Process.Map(pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong buf = r.Process.Map(pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            for (int i = 0; i < pages; i++)
                r.Process.WriteInt32(a + (ulong)i * Page, 100 + i);
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, a, pages, buf, out _));
            var child = r.Process.Fork();
            Assert.True(child.Mm.GetPte(a).IsDevicePrivate);

            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.Release, a, 1, buf, out _));

            Assert.Equal(MirrorDevice.DevicePages, r.Device.FreeDevicePages);
            Assert.Equal(0, r.File.MappedPages);
            for (int i = 0; i < pages; i++)
            {
                ulong at = a + (ulong)i * Page;
                Assert.True(r.Process.Mm.GetPte(at).IsPresent, $"parent page {i}: {r.Process.Mm.GetPte(at)}");
                Assert.True(child.Mm.GetPte(at).IsPresent, $"child page {i}: {child.Mm.GetPte(at)}");
                Assert.Equal(100 + i, r.Process.ReadInt32(at));
            }
            var t = child.StartThread("child", () =>
            {
                Assert.Equal(102, child.ReadInt32(a + 2 * Page));
                child.Exit();
            });
            t.Join();
        });
    }

    [Fact]
    public void Mremap_MigratedPages_MoveWithTheMappingAndFaultBackIntact()
    {
        WithMirror(12, r =>
        {
            const int pages = 8;
            var mm = r.Process.Mm;
            ulong a = r.Process.Map(pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong buf = r.Process.Map(pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            for (int i = 0; i < pages; i++)
                r.Process.WriteInt32(a + (ulong)i * Page, 1000 + i);
            Assert.Equal(Errno.Ok, r.Cmd(MirrorIoctl.MigrateToDevice, a, pages, buf, out _));
            Assert.Equal(Errno.Ok, mm.Mremap(a, pages * Page, pages * Page, MremapFlags.MayMove | MremapFlags.Fixed, buf, out ulong moved));
            Assert.Equal(buf, moved);
            Assert.True(mm.GetPte(moved).IsDevicePrivate, mm.GetPte(moved).ToString());
            Assert.Equal(0, r.File.MappedPages);             // the move invalidated the device's view of the old range
            for (int i = 0; i < pages; i++)
                Assert.Equal(1000 + i, r.Process.ReadInt32(moved + (ulong)i * Page));
        });
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Release_RacingCpuReadsAndMunmap_NoDeadlockDataIntact(SchedulerMode mode)
    {
        for (ulong seed = 1; seed <= 8; seed++)
        {
            using var k = new HostKernel(KernelOptions.For(seed, mode));
            var dev = new MirrorDevice(k, 0);
            var p = k.CreateProcess("evict-race");
            k.Run(() => p.StartThread("main", () =>
            {
                Assert.Equal(Errno.Ok, dev.Open(out var f));
                const int pages = 32;
                ulong a = p.Map(pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
                ulong other = p.Map(4 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
                ulong buf = p.Map(pages * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
                var ints = Enumerable.Range(7, pages * 1024).ToArray();
                p.WriteBytes(a, MemoryMarshal.AsBytes(ints.AsSpan()));
                var cmd = new MirrorCommand { Addr = a, Ptr = buf, NPages = pages };
                Assert.Equal(Errno.Ok, f!.Ioctl(MirrorIoctl.MigrateToDevice, ref cmd));
                var evictor = p.StartThread("release", () =>
                {
                    var c = new MirrorCommand { Addr = a, Ptr = buf, NPages = 1 };
                    Assert.Equal(Errno.Ok, f.Ioctl(MirrorIoctl.Release, ref c));
                });
                var unmapper = p.StartThread("munmap", () => Assert.Equal(Errno.Ok, p.Mm.Munmap(other, 4 * Page)));
                var back = new int[ints.Length];
                p.ReadBytes(a, MemoryMarshal.AsBytes(back.AsSpan()));
                Assert.Equal(ints, back);
                evictor.Join();
                unmapper.Join();
                f.Close();
                p.Exit();
            }).Join());
            k.AssertNoWarnings();
            Assert.Equal(MirrorDevice.DevicePages, dev.FreeDevicePages);
        }
    }

    // Evicts a coherent device's pages by hand, running `during` on another thread between collection and completion.
    private static void EvictWhile(ulong seed, bool duringWaitsForEviction, Action<Process, ulong, List<Process>> during, Action<Process, ulong, List<Process>> check)
    {
        using var k = new HostKernel(KernelOptions.For(seed));
        var dev = new MirrorDevice(k, 2, MemoryType.DeviceCoherent);
        var p = k.CreateProcess("evict");
        var children = new List<Process>();
        k.Run(() => p.StartThread("main", () =>
        {
            Assert.Equal(Errno.Ok, dev.Open(out var f));
            ulong a = p.Map(4 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong buf = p.Map(4 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            for (int i = 0; i < 4; i++)
                p.WriteInt32(a + (ulong)i * Page, 50 + i);
            var cmd = new MirrorCommand { Addr = a, Ptr = buf, NPages = 4 };
            Assert.Equal(Errno.Ok, f!.Ioctl(MirrorIoctl.MigrateToDevice, ref cmd));
            Assert.True(dev.Pagemap.Contains(p.Mm.GetPte(a).Pfn));

            var m = DeviceMigration.Range(k, dev.Pagemap.FirstPfn, 8);
            Assert.True(p.Mm.GetPte(a).IsMigration);
            var other = p.StartThread("during", () => during(p, a, children));
            k.Scheduler.Sleep(100_000);                    // let it run until it blocks on the migration entries
            Assert.Equal(!duringWaitsForEviction, other.IsFinished);
            var mem = k.Memory;
            for (int i = 0; i < 8; i++)
            {
                if (MigratePfn.ToPfn(m.Src[i]) is not ulong s)
                    continue;
                Assert.Equal(Errno.Ok, mem.AllocPage(Gfp.Kernel, out ulong d));
                mem.LockPage(d);
                mem.CopyPage(d, s);
                m.Dst[i] = MigratePfn.From(d) | (m.Src[i] & MigratePfn.Write);
            }
            m.Pages();
            m.Complete();
            other.Join();
            check(p, a, children);
            foreach (var c in children)
                c.StartThread("exit", c.Exit).Join();
            f.Close();
            p.Exit();
        }).Join());
        k.AssertNoWarnings();
        Assert.Equal(MirrorDevice.DevicePages, dev.FreeDevicePages);
    }

    [Fact]
    public void Eviction_ForkInTheMiddle_ChildSeesRestoredPages()
    {
        EvictWhile(13, duringWaitsForEviction: true, (p, a, children) => children.Add(p.Fork()), (p, a, children) =>
        {
            var child = Assert.Single(children);
            for (int i = 0; i < 4; i++)
            {
                ulong at = a + (ulong)i * Page;
                Assert.True(child.Mm.GetPte(at).IsPresent, child.Mm.GetPte(at).ToString());
                Assert.Equal(50 + i, p.ReadInt32(at));
            }
            int seen = 0;
            child.StartThread("child", () => seen = child.ReadInt32(a + 3 * Page)).Join();
            Assert.Equal(53, seen);
        });
    }

    [Fact]
    public void Eviction_MprotectReadOnlyInTheMiddle_PagesComeBackReadOnly()
    {
        EvictWhile(14, duringWaitsForEviction: false, (p, a, _) => Assert.Equal(Errno.Ok, p.Mm.Mprotect(a, 4 * Page, Prot.Read)), (p, a, _) =>
        {
            for (int i = 0; i < 4; i++)
            {
                var pte = p.Mm.GetPte(a + (ulong)i * Page);
                Assert.True(pte.IsPresent && !pte.IsWritable, pte.ToString());
                Assert.Equal(50 + i, p.ReadInt32(a + (ulong)i * Page));
            }
            Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(a, 1));
        });
    }

    [Fact]
    public void LongTermPin_CoherentPagesMigratedOut_MirrorDropsItsEntries()
    {
        using var k = new HostKernel(KernelOptions.For(15));
        var dev = new MirrorDevice(k, 2, MemoryType.DeviceCoherent);
        var p = k.CreateProcess("pin");
        k.Run(() => p.StartThread("main", () =>
        {
            Assert.Equal(Errno.Ok, dev.Open(out var f));
            ulong a = p.Map(2 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            ulong buf = p.Map(2 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            p.WriteInt32(a, 77);
            var cmd = new MirrorCommand { Addr = a, Ptr = buf, NPages = 2 };
            Assert.Equal(Errno.Ok, f!.Ioctl(MirrorIoctl.MigrateToDevice, ref cmd));
            Assert.Equal(2, f.MappedPages);
            var pages = new ulong[2];
            Assert.Equal(Errno.Ok, p.Mm.GetUserPages(a, GupFlags.Write | GupFlags.LongTerm, pages, out int pinned));
            Assert.Equal(2, pinned);
            Assert.All(pages, pfn => Assert.False(k.Memory.IsDevicePage(pfn)));
            Assert.Equal(0, f.MappedPages);           // the kernel's migration reached the mirror
            foreach (var pfn in pages)
                k.Memory.PutPage(pfn);
            cmd = new MirrorCommand { Addr = a, Ptr = buf, NPages = 1 };
            Assert.Equal(Errno.Ok, f.Ioctl(MirrorIoctl.Read, ref cmd));
            Assert.Equal(77, p.ReadInt32(buf));
            f.Close();
            p.Exit();
        }).Join());
        k.AssertNoWarnings();
        Assert.Equal(MirrorDevice.DevicePages, dev.FreeDevicePages);
    }

    [Fact]
    public void VmaPages_LaterDestinationUnlocked_ThrowsWithNoInvalidationLeftOpen()
    {
        WithMirror(16, r =>
        {
            var mm = r.Process.Mm;
            var mem = r.Kernel.Memory;
            ulong a = r.Process.Map(2 * Page, Prot.ReadWrite, MapFlags.PrivateAnonymous);   // both slots empty
            using (mm.MmapReadLock())
            {
                var args = new MigrateVma
                {
                    Vma = mm.VmaLookup(a), Start = a, End = a + 2 * Page, Src = new ulong[2], Dst = new ulong[2],
                    PgmapOwner = r.Device, Flags = MigrateSelect.System,
                };
                Assert.Equal(Errno.Ok, Migrate.VmaSetup(args));
                Assert.Equal(Errno.Ok, mem.AllocPage(Gfp.Kernel, out ulong locked));
                mem.LockPage(locked);
                Assert.Equal(Errno.Ok, mem.AllocPage(Gfp.Kernel, out ulong unlocked));
                args.Dst[0] = MigratePfn.From(locked);
                args.Dst[1] = MigratePfn.From(unlocked);
                Assert.Throws<KernelRuleViolationException>(() => Migrate.VmaPages(args));
                Assert.Equal(0UL, mm.NotifierSeq & 1);           // even: no invalidation left running
                Assert.True(mm.GetPte(a).IsNone);                 // nothing was inserted
                args.Dst[1] = 0;
                mem.PutPage(unlocked);
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
            }
            Assert.True(mm.GetPte(a).IsPresent);
        });
    }
}
