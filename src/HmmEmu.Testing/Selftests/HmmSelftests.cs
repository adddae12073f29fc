using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;
using HmmEmu.Mirror;
using static HmmEmu.Testing.Selftests.SelftestContext;

namespace HmmEmu.Testing.Selftests;

/// <summary>
/// The port of tools/testing/selftests/mm/hmm-tests.c: the tests that need no device memory and no huge pages,
/// with the kernel's names and assertions. Each runs once per fixture variant; the device-coherent variants skip,
/// as on a kernel whose test module was loaded without coherent memory.
/// </summary>
public static class HmmSelftests
{
    /// <summary>Every ported case, in the order the kernel's harness runs them.</summary>
    public static IReadOnlyList<HmmSelftest> All { get; } = Build();

    private static List<HmmSelftest> Build()
    {
        (string Name, Action<SelftestContext> Body)[] hmm =
        [
            ("open_close", _ => { }),
            ("anon_read", AnonRead),
            ("anon_read_prot", AnonReadProt),
            ("anon_write", AnonWrite),
            ("anon_write_prot", AnonWriteProt),
            ("anon_write_child", AnonWriteChild),
            ("anon_write_child_shared", AnonWriteChildShared),
            ("anon_write_huge", AnonWriteHuge),
            ("anon_write_hugetlbfs", AnonWriteHugetlbfs),
            ("file_read", FileRead),
            ("file_write", FileWrite),
            ("migrate", MigrateTest),
            ("migrate_fault", MigrateFault),
            ("migrate_release", MigrateRelease),
            ("migrate_shared", MigrateShared),
            ("migrate_multiple", MigrateMultiple),
            ("anon_read_multiple", AnonReadMultiple),
            ("anon_teardown", AnonTeardown),
            ("mixedmap", Mixedmap),
            ("compound", Compound),
            ("exclusive", ExclusiveTest),
            ("exclusive_mprotect", ExclusiveMprotect),
            ("exclusive_cow", ExclusiveCow),
            ("hmm_gup_test", HmmGupTest),
            ("hmm_cow_in_device", HmmCowInDevice),
            ("migrate_anon_huge_empty", MigrateAnonHugeEmpty),
            ("migrate_anon_huge_zero", MigrateAnonHugeZero),
            ("migrate_anon_huge_free", MigrateAnonHugeFree),
            ("migrate_anon_huge_fault", MigrateAnonHugeFault),
            ("migrate_partial_unmap_fault", MigratePartialUnmapFault),
            ("migrate_remap_fault", MigrateRemapFault),
            ("migrate_anon_huge_err", MigrateAnonHugeErr),
            ("migrate_anon_huge_zero_err", MigrateAnonHugeZeroErr),
        ];
        (string Name, Action<SelftestContext> Body)[] hmm2 =
        [
            ("migrate_mixed", MigrateMixed),
            ("snapshot", Snapshot),
            ("double_map", DoubleMap),
        ];
        var all = new List<HmmSelftest>();
        foreach (var variant in new[] { "hmm_device_private", "hmm_device_coherent" })
        {
            foreach (var (name, body) in hmm)
                all.Add(new HmmSelftest("hmm", variant, name, body));
        }
        foreach (var variant in new[] { "hmm2_device_private", "hmm2_device_coherent" })
        {
            foreach (var (name, body) in hmm2)
                all.Add(new HmmSelftest("hmm2", variant, name, body));
        }
        return all;
    }

    private static (HmmBuffer Buffer, ulong NPages, int Ints) Std(SelftestContext t, ulong? mirrorBytes = null)
    {
        ulong npages = ((HmmBufferSize + t.PageSize - 1) & ~(t.PageSize - 1)) >> t.PageShift;
        AssertNe(0UL, npages, "npages");
        ulong size = npages << t.PageShift;
        return (t.AllocBuffer(size, mirrorBytes), npages, (int)(size / sizeof(int)));
    }

    private static void MapStd(SelftestContext t, HmmBuffer b, Prot prot, MapFlags flags)
    {
        b.Ptr = t.Mmap(b.Size, prot, flags, out var err, b.File);
        AssertEq(Errno.Ok, err, "mmap");
        AssertNe(0UL, b.Ptr, "buffer->ptr (MAP_FAILED)");
    }

    private static void AssertCmd(SelftestContext t, int ret, HmmBuffer b, ulong npages, ulong faults)
    {
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        AssertEq(faults, b.Faults, "buffer->faults");
    }

    // Read private anonymous memory: zero page, none and real pages alike reach the device.
    private static void AnonRead(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        int skip = (int)(2 * t.PageSize / sizeof(int));
        t.WriteInts(b.Ptr + 2 * t.PageSize, n - skip, i => i + skip);
        AssertEq(Errno.Ok, t.Process.Mm.Mprotect(b.Ptr, b.Size, Prot.Read), "mprotect");
        AssertEq(0, t.ReadInts(b.Ptr + t.PageSize, 1)[0], "val");
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Read, b, npages);
        AssertCmd(t, ret, b, npages, 1);
        AssertInts(t.ReadInts(b.Mirror, n), i => i < skip ? 0 : i, "mirror");
        t.Free(b);
    }

    // Reading PROT_NONE memory fails with EFAULT and leaves the mirror alone.
    private static void AnonReadProt(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        t.WriteInts(b.Mirror, n, i => -i);
        AssertEq(Errno.Ok, t.Process.Mm.Mprotect(b.Ptr, b.Size, Prot.None), "mprotect");
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Read, b, npages);
        AssertEq(-(int)Errno.EFAULT, ret, "ret");
        AssertEq(Errno.Ok, t.Process.Mm.Mprotect(b.Ptr, b.Size, Prot.Read), "mprotect");
        AssertInts(t.ReadInts(b.Ptr, n), i => i, "ptr");
        AssertInts(t.ReadInts(b.Mirror, n), i => -i, "mirror");
        t.Free(b);
    }

    // Device writes to never-touched anonymous memory.
    private static void AnonWrite(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Mirror, n, i => i);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Write, b, npages);
        AssertCmd(t, ret, b, npages, 1);
        AssertInts(t.ReadInts(b.Ptr, n), i => i, "ptr");
        t.Free(b);
    }

    // A device write to read-only memory fails with EPERM until mprotect allows it.
    private static void AnonWriteProt(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.Read, MapFlags.PrivateAnonymous);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Read, b, 1);
        AssertCmd(t, ret, b, 1, 1);
        t.WriteInts(b.Mirror, n, i => i);
        ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Write, b, npages);
        AssertEq(-(int)Errno.EPERM, ret, "ret");
        AssertInts(t.ReadInts(b.Ptr, n), _ => 0, "ptr");
        AssertEq(Errno.Ok, t.Process.Mm.Mprotect(b.Ptr, b.Size, Prot.ReadWrite), "mprotect");
        ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Write, b, npages);
        AssertCmd(t, ret, b, npages, 1);
        AssertInts(t.ReadInts(b.Ptr, n), i => i, "ptr");
        t.Free(b);
    }

    // After fork, a device write in the child breaks COW in the child only; with the pages first migrated to the
    // device, and with and without a transparent huge page (the newer test's four rounds).
    private static void AnonWriteChild(SelftestContext t)
    {
        foreach (bool migrate in new[] { false, true })
        {
            foreach (bool useThp in new[] { false, true })
            {
                ulong npages = (useThp ? TwoMeg : HmmBufferSize) >> t.PageShift;
                ulong size = npages << t.PageShift;
                var b = t.AllocBuffer(2 * size, size);
                MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
                ulong oldPtr = b.Ptr;
                if (useThp)
                {
                    b.Ptr = (b.Ptr + size - 1) & ~(size - 1);
                    AssertEq(Errno.Ok, t.Process.Mm.Madvise(b.Ptr, size, Advice.HugePage), "madvise");
                }
                int n = (int)(size / sizeof(int));
                t.WriteInts(b.Ptr, n, i => i);
                t.WriteInts(b.Mirror, n, i => -i);
                if (migrate)
                {
                    int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, npages);
                    AssertEq(0, ret, "ret");
                    AssertEq(npages, b.CPages, "buffer->cpages");
                }
                bool exited = t.ForkAndWait(c =>
                {
                    AssertInts(c.ReadInts(b.Ptr, n), i => i, "ptr");
                    if (!migrate)
                        AssertInts(c.ReadInts(b.Mirror, n), i => -i, "mirror");
                    var childFd = c.Open(0);
                    int ret = c.DmirrorCmd(childFd, MirrorIoctl.Write, b, npages);
                    AssertCmd(c, ret, b, npages, 1);
                    if (!migrate)
                        AssertInts(c.ReadInts(b.Ptr, n), i => -i, "ptr");
                    childFd.Close();
                });
                AssertEq(true, exited, $"WIFEXITED(ret){(t.ChildFailure is null ? "" : " (child: " + t.ChildFailure.Message + ")")}");
                AssertInts(t.ReadInts(b.Ptr, n), i => i, "ptr");
                b.Ptr = oldPtr;
                t.Free(b);
            }
        }
    }

    // The child of the anon_write_child tests: sees the parent's data, opens device 0 and writes -i through it.
    private static void ForkChildThatWritesThroughItsOwnMirror(SelftestContext t, HmmBuffer b, ulong npages, int n)
    {
        bool exited = t.ForkAndWait(c =>
        {
            AssertInts(c.ReadInts(b.Ptr, n), i => i, "ptr");
            AssertInts(c.ReadInts(b.Mirror, n), i => -i, "mirror");
            var childFd = c.Open(0);
            int ret = c.DmirrorCmd(childFd, MirrorIoctl.Write, b, npages);
            AssertCmd(c, ret, b, npages, 1);
            AssertInts(c.ReadInts(b.Ptr, n), i => -i, "ptr");
            childFd.Close();
        });
        AssertEq(true, exited, $"WIFEXITED(ret){(t.ChildFailure is null ? "" : " (child: " + t.ChildFailure.Message + ")")}");
    }

    // With a shared mapping, the child's device write is visible to the parent.
    private static void AnonWriteChildShared(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.SharedAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        t.WriteInts(b.Mirror, n, i => -i);
        ForkChildThatWritesThroughItsOwnMirror(t, b, npages, n);
        AssertInts(t.ReadInts(b.Ptr, n), i => -i, "ptr");
        t.Free(b);
    }

    // The device reads a shared, read-only file mapping.
    private static void FileRead(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        b.File = t.CreateFile(b.Size);
        t.WriteInts(b.Mirror, n, i => i);
        var data = t.ReadBytes(b.Mirror, (int)b.Size);
        AssertEq(Errno.Ok, b.File.Write(data, 0), "pwrite");
        t.WriteInts(b.Mirror, n, _ => 0);
        MapStd(t, b, Prot.Read, MapFlags.Shared);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Read, b, npages);
        AssertCmd(t, ret, b, npages, 1);
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        t.Free(b);
    }

    // The device writes a shared file mapping and the data reaches the file.
    private static void FileWrite(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        b.File = t.CreateFile(b.Size);
        MapStd(t, b, Prot.ReadWrite, MapFlags.Shared);
        t.WriteInts(b.Mirror, n, i => i);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Write, b, npages);
        AssertCmd(t, ret, b, npages, 1);
        AssertInts(t.ReadInts(b.Ptr, n), i => i, "ptr");
        var back = new byte[b.Size];
        AssertEq(Errno.Ok, b.File.Read(back, 0, out int len), "pread");
        AssertEq((int)b.Size, len, "len");
        AssertInts(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(back).ToArray(), i => i, "mirror");
        t.Free(b);
    }

    // Ten rounds of fresh mappings read by the device.
    private static void AnonReadMultiple(SelftestContext t)
    {
        for (int c = 0; c < NTimes; c++)
        {
            var (b, npages, n) = Std(t);
            MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            int round = c;
            t.WriteInts(b.Ptr, n, i => i + round);
            int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Read, b, npages);
            AssertCmd(t, ret, b, npages, 1);
            AssertInts(t.ReadInts(b.Mirror, n), i => i + round, "mirror");
            t.Free(b);
        }
    }

    // A device read racing a munmap of half the buffer: either all data, or an error.
    private static void AnonTeardown(SelftestContext t)
    {
        for (int c = 0; c < NTimes; c++)
        {
            var (b, npages, n) = Std(t);
            MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            int round = c;
            t.WriteInts(b.Ptr, n, i => i + round);
            ulong upper = b.Ptr + b.Size / 2;
            ulong sleepNs = t.Random.NextUInt64() % 32000;
            var thread = t.StartThread("unmap_buffer", () =>
            {
                t.Kernel.Scheduler.Sleep(sleepNs);
                t.Process.Mm.Munmap(upper, b.Size / 2);
                b.Ptr = 0;
            });
            int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Read, b, npages);
            if (ret == 0)
            {
                AssertEq(npages, b.CPages, "buffer->cpages");
                AssertEq(1UL, b.Faults, "buffer->faults");
                AssertInts(t.ReadInts(b.Mirror, n), i => i + round, "mirror");
            }
            thread.Join();
            t.Free(b);
        }
    }

    // Snapshot codes for a hole, PROT_NONE, zero page, read-only and writable pages, and pages on this and another device.
    private static void Snapshot(SelftestContext t)
    {
        const ulong npages = 7;
        ulong ps = t.PageSize;
        var b = t.AllocBuffer(npages * ps, npages);
        b.Ptr = t.Mmap(b.Size, Prot.None, MapFlags.PrivateAnonymous, out var err);
        AssertEq(Errno.Ok, err, "mmap");
        var mm = t.Process.Mm;
        ulong p = b.Ptr;
        AssertEq(Errno.Ok, mm.Munmap(p + ps, ps), "munmap");
        AssertEq(Errno.Ok, mm.Mprotect(p + 2 * ps, ps, Prot.Read), "mprotect");
        int val = t.ReadInts(p + 2 * ps, 1)[0] + 3;
        AssertEq(3, val, "val");
        AssertEq(Errno.Ok, mm.Mprotect(p + 3 * ps, ps, Prot.ReadWrite), "mprotect");
        t.WriteInts(p + 3 * ps, 1, _ => val);
        AssertEq(Errno.Ok, mm.Mprotect(p + 3 * ps, ps, Prot.Read), "mprotect");
        AssertEq(Errno.Ok, mm.Mprotect(p + 4 * ps, 3 * ps, Prot.ReadWrite), "mprotect");
        t.WriteInts(p + 4 * ps, 1, _ => val);
        b.Ptr = p + 5 * ps;
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, 1);
        AssertEq(0, ret, "ret");
        AssertEq(1UL, b.CPages, "buffer->cpages");
        b.Ptr = p + 6 * ps;
        ret = t.DmirrorCmd(t.Fd1!, MirrorIoctl.MigrateToDevice, b, 1);
        AssertEq(0, ret, "ret");
        AssertEq(1UL, b.CPages, "buffer->cpages");
        b.Ptr = p;
        ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Snapshot, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        var m = t.ReadBytes(b.Mirror, (int)npages);
        AssertEq(SnapshotProt.Error, m[0], "m[0]");
        AssertEq(SnapshotProt.Error, m[1], "m[1]");
        AssertEq((byte)(SnapshotProt.Zero | SnapshotProt.Read), m[2], "m[2]");
        AssertEq(SnapshotProt.Read, m[3], "m[3]");
        AssertEq(SnapshotProt.Write, m[4], "m[4]");
        if (t.IsCoherent)
        {
            AssertEq((byte)(SnapshotProt.DevCoherentLocal | SnapshotProt.Write), m[5], "m[5]");
            AssertEq((byte)(SnapshotProt.DevCoherentRemote | SnapshotProt.Write), m[6], "m[6]");
        }
        else
        {
            AssertEq((byte)(SnapshotProt.DevPrivateLocal | SnapshotProt.Write), m[5], "m[5]");
            AssertEq(SnapshotProt.None, m[6], "m[6]");
        }
        t.Free(b);
    }

    // Two devices mirror the same read-only pages; migrating them to one device makes the other fault them back.
    private static void DoubleMap(SelftestContext t)
    {
        const ulong npages = 6;
        var b = t.AllocBuffer(npages * t.PageSize);
        int n = (int)(b.Size / sizeof(int));
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        AssertEq(Errno.Ok, t.Process.Mm.Mprotect(b.Ptr, b.Size, Prot.Read), "mprotect");
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Read, b, npages);
        AssertCmd(t, ret, b, npages, 1);
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        ret = t.DmirrorCmd(t.Fd1!, MirrorIoctl.Read, b, npages);
        AssertCmd(t, ret, b, npages, 1);
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        ret = t.DmirrorCmd(t.Fd1!, MirrorIoctl.MigrateToDevice, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Read, b, npages);
        AssertCmd(t, ret, b, npages, 1);
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        t.Free(b);
    }

    // Migrate anonymous memory to device memory; the device reads it back intact.
    private static void MigrateTest(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        t.Free(b);
    }

    // Migrate, fault half back with CPU reads, migrate the whole range again.
    private static void MigrateFault(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        AssertInts(t.ReadInts(b.Ptr, n / 2), i => i, "ptr");
        ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        t.Free(b);
    }

    // Shared anonymous memory (shmem) is not migrated, so the device finds nothing.
    private static void MigrateShared(SelftestContext t)
    {
        var (b, npages, _) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.SharedAnonymous);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, npages);
        AssertEq(-(int)Errno.ENOENT, ret, "ret");
        t.Free(b);
    }

    // Ten rounds of migrate, then CPU reads that fault every page back.
    private static void MigrateMultiple(SelftestContext t)
    {
        for (int c = 0; c < NTimes; c++)
        {
            var (b, npages, n) = Std(t);
            MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            t.WriteInts(b.Ptr, n, i => i);
            int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, npages);
            AssertEq(0, ret, "ret");
            AssertEq(npages, b.CPages, "buffer->cpages");
            AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
            if (t.IsCoherent)
            {
                ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToSystem, b, npages);
                AssertEq(0, ret, "ret");
                AssertEq(npages, b.CPages, "buffer->cpages");
            }
            AssertInts(t.ReadInts(b.Ptr, n), i => i, "ptr");
            t.Free(b);
        }
    }

    // Migration refuses PROT_NONE and ranges with holes, takes zero, read-only and writable pages, and a page
    // already on another device is not this device's to take.
    private static void MigrateMixed(SelftestContext t)
    {
        const ulong npages = 6;
        ulong ps = t.PageSize;
        var b = t.AllocBuffer(npages * ps);
        b.Ptr = t.Mmap(b.Size, Prot.None, MapFlags.PrivateAnonymous, out var err);
        AssertEq(Errno.Ok, err, "mmap");
        var mm = t.Process.Mm;
        ulong p = b.Ptr;
        int ret = t.DmirrorCmd(t.Fd1!, MirrorIoctl.MigrateToDevice, b, npages);
        AssertEq(-(int)Errno.EINVAL, ret, "ret");
        AssertEq(Errno.Ok, mm.Munmap(p + ps, ps), "munmap");
        ret = t.DmirrorCmd(t.Fd1!, MirrorIoctl.MigrateToDevice, b, 3);
        AssertEq(-(int)Errno.EINVAL, ret, "ret");
        AssertEq(Errno.Ok, mm.Mprotect(p + 2 * ps, ps, Prot.Read), "mprotect");
        int val = t.ReadInts(p + 2 * ps, 1)[0] + 3;
        AssertEq(3, val, "val");
        AssertEq(Errno.Ok, mm.Mprotect(p + 3 * ps, ps, Prot.ReadWrite), "mprotect");
        t.WriteInts(p + 3 * ps, 1, _ => val);
        AssertEq(Errno.Ok, mm.Mprotect(p + 3 * ps, ps, Prot.Read), "mprotect");
        AssertEq(Errno.Ok, mm.Mprotect(p + 4 * ps, 2 * ps, Prot.ReadWrite), "mprotect");
        t.WriteInts(p + 4 * ps, 1, _ => val);
        t.WriteInts(p + 5 * ps, 1, _ => val);
        b.Ptr = p + 2 * ps;
        ret = t.DmirrorCmd(t.Fd1!, MirrorIoctl.MigrateToDevice, b, 4);
        AssertEq(0, ret, "ret");
        AssertEq(4UL, b.CPages, "buffer->cpages");
        b.Ptr = p + 5 * ps;
        ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, 1);
        AssertEq(-(int)Errno.ENOENT, ret, "ret");
        b.Ptr = p;
        t.Free(b);
    }

    // Device-private pages shared with a child by fork are copy-on-write: the parent's writes migrate its copies
    // back and make them writable, and the child's exit frees the rest.
    private static void HmmCowInDevice(SelftestContext t)
    {
        const ulong npages = 4;
        var b = t.AllocBuffer(npages * t.PageSize);
        int n = (int)(b.Size / sizeof(int));
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        var killChild = t.ForkSpinningChild();
        t.WriteInts(b.Ptr, n, i => i + 1);
        AssertEq(true, killChild(), "WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM");
        ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Snapshot, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        var m = t.ReadBytes(b.Mirror, (int)npages);
        for (int i = 0; i < (int)npages; i++)
            AssertEq(SnapshotProt.Write, m[i], $"m[{i}]");
        AssertInts(t.ReadInts(b.Ptr, n), i => i + 1, "ptr");
        t.Free(b);
    }

    private static void TakeExclusive(SelftestContext t, HmmBuffer b, ulong npages, int n)
    {
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Exclusive, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
    }

    // CPU accesses take device-exclusive pages back; the device no longer holds atomic access afterwards.
    private static void ExclusiveTest(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        TakeExclusive(t, b, npages, n);
        var ptr = t.ReadInts(b.Ptr, n);
        AssertInts(ptr, i => i, "ptr");
        t.WriteInts(b.Ptr, n, i => ptr[i] + 1);
        AssertInts(t.ReadInts(b.Ptr, n), i => i + 1, "ptr");
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.CheckExclusive, b, npages);
        AssertEq(0, ret, "ret");
        t.Free(b);
    }

    // mprotect of device-exclusive pages to read-only: a device write then fails with EPERM.
    private static void ExclusiveMprotect(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        TakeExclusive(t, b, npages, n);
        AssertEq(Errno.Ok, t.Process.Mm.Mprotect(b.Ptr, b.Size, Prot.Read), "mprotect");
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Write, b, npages);
        AssertEq(-(int)Errno.EPERM, ret, "ret");
        t.Free(b);
    }

    // fork of device-exclusive pages: both processes continue and each sees its own copy.
    private static void ExclusiveCow(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        TakeExclusive(t, b, npages, n);
        void IncrementAndCheck(SelftestContext c)
        {
            var ptr = c.ReadInts(b.Ptr, n);
            AssertInts(ptr, i => i, "ptr");
            c.WriteInts(b.Ptr, n, i => ptr[i] + 1);
            AssertInts(c.ReadInts(b.Ptr, n), i => i + 1, "ptr");
        }
        bool exited = t.ForkAndWait(IncrementAndCheck);
        AssertEq(true, exited, $"child{(t.ChildFailure is null ? "" : ": " + t.ChildFailure.Message)}");
        IncrementAndCheck(t);
        t.Free(b);
    }

    // get_user_pages on migrated pages: device-private pages come back to system memory; coherent pages stay unless
    // the pin is long-term.
    private static void HmmGupTest(SelftestContext t)
    {
        const ulong npages = 4;
        ulong ps = t.PageSize;
        var b = t.AllocBuffer(npages * ps);
        int n = (int)(b.Size / sizeof(int));
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        AssertEq(0, t.GupTestExec(b.Ptr, GupTestCommand.GupBasicTest, ps), "gup_test_exec(GUP_BASIC_TEST)");
        AssertEq(0, t.GupTestExec(b.Ptr + ps, GupTestCommand.GupFastBenchmark, ps), "gup_test_exec(GUP_FAST_BENCHMARK)");
        AssertEq(0, t.GupTestExec(b.Ptr + 2 * ps, GupTestCommand.PinFastBenchmark, ps, GupFlags.LongTerm), "gup_test_exec(PIN_FAST_BENCHMARK)");
        AssertEq(0, t.GupTestExec(b.Ptr + 3 * ps, GupTestCommand.PinLongtermBenchmark, ps), "gup_test_exec(PIN_LONGTERM_BENCHMARK)");
        ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Snapshot, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        var m = t.ReadBytes(b.Mirror, (int)npages);
        byte first = t.IsCoherent ? (byte)(SnapshotProt.DevCoherentLocal | SnapshotProt.Write) : SnapshotProt.Write;
        AssertEq(first, m[0], "m[0]");
        AssertEq(first, m[1], "m[1]");
        AssertEq(SnapshotProt.Write, m[2], "m[2]");
        AssertEq(SnapshotProt.Write, m[3], "m[3]");
        AssertInts(t.ReadInts(b.Ptr, n), i => i, "ptr");
        t.Free(b);
    }

    // Migrate, then have the device give all its memory back; the CPU still reads the data.
    private static void MigrateRelease(SelftestContext t)
    {
        var (b, npages, n) = Std(t);
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        t.WriteInts(b.Ptr, n, i => i);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Release, b, npages);
        AssertEq(0, ret, "ret");
        AssertInts(t.ReadInts(b.Ptr, n / 2), i => i, "ptr");
        t.Free(b);
    }

    // A private mapping of the device file itself (VM_MIXEDMAP kernel pages) snapshots as read-only.
    private static void Mixedmap(SelftestContext t)
    {
        const ulong npages = 1;
        var b = t.AllocBuffer(npages * t.PageSize, npages);
        var err = t.Fd.Mmap(b.Size, Prot.ReadWrite, MapFlags.Private, out ulong ptr);
        AssertEq(Errno.Ok, err, "mmap");
        b.Ptr = ptr;
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Snapshot, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        AssertEq(SnapshotProt.Read, t.ReadBytes(b.Mirror, 1)[0], "m[0]");
        t.Free(b);
    }

    private const ulong TwoMeg = 1UL << 21;

    // The device writes a 2 MiB region advised MADV_HUGEPAGE (a transparent huge page).
    private static void AnonWriteHuge(SelftestContext t)
    {
        ulong size = 2 * TwoMeg;
        var b = t.AllocBuffer(size);
        MapStd(t, b, Prot.ReadWrite, MapFlags.PrivateAnonymous);
        size = TwoMeg;
        ulong npages = size >> t.PageShift;
        ulong map = (b.Ptr + size - 1) & ~(size - 1);
        AssertEq(Errno.Ok, t.Process.Mm.Madvise(map, size, Advice.HugePage), "madvise");
        ulong oldPtr = b.Ptr;
        b.Ptr = map;
        int n = (int)(size / sizeof(int));
        t.WriteInts(b.Mirror, n, i => i);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Write, b, npages);
        AssertCmd(t, ret, b, npages, 1);
        AssertInts(t.ReadInts(b.Ptr, n), i => i, "ptr");
        b.Ptr = oldPtr;
        t.Free(b);
    }

    // The device writes a MAP_HUGETLB mapping.
    private static void AnonWriteHugetlbfs(SelftestContext t)
    {
        ulong size = TwoMeg;                           // ALIGN(TWOMEG, default huge page size of 2 MiB)
        ulong npages = size >> t.PageShift;
        var b = t.AllocBuffer(size);
        b.Ptr = t.Mmap(size, Prot.ReadWrite, MapFlags.PrivateAnonymous | MapFlags.HugeTlb, out var err);
        AssertEq(Errno.Ok, err, "mmap(MAP_HUGETLB)");
        int n = (int)(size / sizeof(int));
        t.WriteInts(b.Mirror, n, i => i);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Write, b, npages);
        AssertCmd(t, ret, b, npages, 1);
        AssertInts(t.ReadInts(b.Ptr, n), i => i, "ptr");
        t.Free(b);
    }

    // A hugetlb page snapshots as PMD-mapped, writable, then read-only after mprotect.
    private static void Compound(SelftestContext t)
    {
        ulong size = TwoMeg;
        ulong npages = size >> t.PageShift;
        var b = t.AllocBuffer(size, npages);
        b.Ptr = t.Mmap(size, Prot.ReadWrite, MapFlags.PrivateAnonymous | MapFlags.HugeTlb, out var err);
        AssertEq(Errno.Ok, err, "mmap(MAP_HUGETLB)");
        int n = (int)(size / sizeof(int));
        t.WriteInts(b.Ptr, n, i => i);
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Snapshot, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        var m = t.ReadBytes(b.Mirror, (int)npages);
        for (int i = 0; i < (int)npages; i++)
            AssertEq((byte)(SnapshotProt.Write | SnapshotProt.Pmd), m[i], $"m[{i}]");
        AssertEq(Errno.Ok, t.Process.Mm.Mprotect(b.Ptr, size, Prot.Read), "mprotect");
        ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Snapshot, b, npages);
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
        m = t.ReadBytes(b.Mirror, (int)npages);
        for (int i = 0; i < (int)npages; i++)
            AssertEq((byte)(SnapshotProt.Read | SnapshotProt.Pmd), m[i], $"m[{i}]");
        t.Free(b);
    }

    private const ulong OneMeg = 1UL << 20;
    private static readonly ulong[] s_offsets = [0, 512 * 1024, OneMeg];

    // The THP tests' setup: 2*TWOMEG mapped, a 2 MiB-aligned block inside it advised (NO)HUGEPAGE, mirror preset to
    // 0xFF. Returns the aligned block; buffer.Ptr stays the mapping start (old_ptr).
    private static ulong MapHugeRegion(SelftestContext t, HmmBuffer b, Prot prot, bool useThp = true)
    {
        MapStd(t, b, prot, MapFlags.PrivateAnonymous);
        ulong map = (b.Ptr + TwoMeg - 1) & ~(TwoMeg - 1);
        AssertEq(Errno.Ok, t.Process.Mm.Madvise(map, TwoMeg, useThp ? Advice.HugePage : Advice.NoHugePage), "madvise");
        t.WriteBytesFill(b.Mirror, (int)b.MirrorSize, 0xFF);
        return map;
    }

    private static void MigrateBlock(SelftestContext t, HmmBuffer b, ulong at, ulong npages)
    {
        ulong oldPtr = b.Ptr;
        b.Ptr = at;
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToDevice, b, npages);
        b.Ptr = oldPtr;
        AssertEq(0, ret, "ret");
        AssertEq(npages, b.CPages, "buffer->cpages");
    }

    private static int Flags(SelftestContext t, HmmBuffer b, ulong flags)
    {
        ulong oldPtr = b.Ptr;
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.Flags, b, flags);
        b.Ptr = oldPtr;
        return ret;
    }

    // Migrate an untouched, read-only huge-page region: the device sees zeros.
    private static void MigrateAnonHugeEmpty(SelftestContext t)
    {
        var b = t.AllocBuffer(2 * TwoMeg, TwoMeg);
        ulong map = MapHugeRegion(t, b, Prot.Read);
        ulong npages = TwoMeg >> t.PageShift;
        MigrateBlock(t, b, map, npages);
        AssertInts(t.ReadInts(b.Mirror, (int)(TwoMeg / 4)), _ => 0, "mirror");
        t.Free(b);
    }

    // Migrate a read-faulted (zero) huge-page region and fault it back.
    private static void MigrateAnonHugeZero(SelftestContext t)
    {
        var b = t.AllocBuffer(2 * TwoMeg, TwoMeg);
        ulong map = MapHugeRegion(t, b, Prot.Read);
        ulong npages = TwoMeg >> t.PageShift;
        int n = (int)(TwoMeg / 4);
        AssertEq(0, t.ReadInts(map, 1)[0], "val");
        MigrateBlock(t, b, map, npages);
        AssertInts(t.ReadInts(b.Mirror, n), _ => 0, "mirror");
        AssertInts(t.ReadInts(map, n), _ => 0, "ptr");
        t.Free(b);
    }

    // Migrate a huge page, then MADV_FREE it.
    private static void MigrateAnonHugeFree(SelftestContext t)
    {
        var b = t.AllocBuffer(2 * TwoMeg, TwoMeg);
        ulong map = MapHugeRegion(t, b, Prot.ReadWrite);
        ulong npages = TwoMeg >> t.PageShift;
        int n = (int)(TwoMeg / 4);
        t.WriteInts(map, n, i => i);
        MigrateBlock(t, b, map, npages);
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        AssertEq(Errno.Ok, t.Process.Mm.Madvise(map, TwoMeg, Advice.Free), "madvise(MADV_FREE)");
        t.Free(b);
    }

    // Migrate a huge page and fault it all back.
    private static void MigrateAnonHugeFault(SelftestContext t)
    {
        var b = t.AllocBuffer(2 * TwoMeg, TwoMeg);
        ulong map = MapHugeRegion(t, b, Prot.ReadWrite);
        ulong npages = TwoMeg >> t.PageShift;
        int n = (int)(TwoMeg / 4);
        t.WriteInts(map, n, i => i);
        MigrateBlock(t, b, map, npages);
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        AssertInts(t.ReadInts(map, n), i => i, "ptr");
        t.Free(b);
    }

    // Migrate 2 MiB (huge or not), unmap 1 MiB of it at three offsets, fault the rest back.
    private static void MigratePartialUnmapFault(SelftestContext t)
    {
        foreach (bool useThp in new[] { false, true })
        {
            foreach (ulong off in s_offsets)
            {
                var b = t.AllocBuffer(2 * TwoMeg, TwoMeg);
                ulong map = MapHugeRegion(t, b, Prot.ReadWrite, useThp);
                ulong npages = TwoMeg >> t.PageShift;
                int n = (int)(TwoMeg / 4);
                t.WriteInts(map, n, i => i);
                MigrateBlock(t, b, map, npages);
                AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
                t.Process.Mm.Munmap(map + off, OneMeg);
                int holeFirst = (int)(off / 4), holeEnd = (int)((off + OneMeg) / 4);
                if (holeFirst > 0)
                    AssertInts(t.ReadInts(map, holeFirst), i => i, "ptr");
                if (holeEnd < n)
                    AssertInts(t.ReadInts(map + (ulong)holeEnd * 4, n - holeEnd), i => i + holeEnd, "ptr");
                t.Free(b);
            }
        }
    }

    // mremap (MAYMOVE|FIXED[|DONTUNMAP]) a 2 MiB region before or after migrating it; the data follows.
    private static void MigrateRemapFault(SelftestContext t)
    {
        var mm = t.Process.Mm;
        foreach (bool before in new[] { false, true })
        {
            foreach (bool dontUnmap in new[] { false, true })
            {
                foreach (bool useThp in new[] { false, true })
                {
                    foreach (ulong off in s_offsets)
                    {
                        var flags = MremapFlags.MayMove | MremapFlags.Fixed | (dontUnmap ? MremapFlags.DontUnmap : MremapFlags.None);
                        var b = t.AllocBuffer(8 * TwoMeg, TwoMeg);
                        ulong map = MapHugeRegion(t, b, Prot.ReadWrite, useThp);
                        ulong npages = TwoMeg >> t.PageShift;
                        int n = (int)(TwoMeg / 4);
                        mm.Munmap(map + TwoMeg, 2 * TwoMeg);
                        t.WriteInts(map, n, i => i);
                        ulong at = map, newPtr = 0;
                        if (before)
                        {
                            AssertEq(Errno.Ok, mm.Mremap(map, TwoMeg, TwoMeg, flags, map + TwoMeg + off, out newPtr), "mremap");
                            at = newPtr;
                        }
                        MigrateBlock(t, b, at, npages);
                        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
                        if (!before)
                        {
                            AssertEq(Errno.Ok, mm.Mremap(map, TwoMeg, TwoMeg, flags, map + TwoMeg + off, out newPtr), "mremap");
                            at = newPtr;
                        }
                        AssertInts(t.ReadInts(at, n), i => i, "ptr");
                        mm.Munmap(newPtr, TwoMeg);
                        t.Free(b);
                    }
                }
            }
        }
    }

    // A forced huge allocation failure during migration falls back to small pages both ways.
    private static void MigrateAnonHugeErr(SelftestContext t)
    {
        var mm = t.Process.Mm;
        var b = t.AllocBuffer(2 * TwoMeg, 2 * TwoMeg);
        ulong map = MapHugeRegion(t, b, Prot.ReadWrite);
        ulong npages = TwoMeg >> t.PageShift;
        int n = (int)(TwoMeg / 4);
        t.WriteInts(map, n, i => i);
        AssertEq(0, Flags(t, b, MirrorFile.FlagFailAlloc), "ret");
        MigrateBlock(t, b, map, npages);
        AssertInts(t.ReadInts(b.Mirror, n), i => i, "mirror");
        AssertEq(2048, t.ReadInts(map + 2048 * 4, 1)[0], "ptr[2048]");
        AssertEq(Errno.Ok, mm.Munmap(b.Ptr, b.Size), "munmap");
        map = MapHugeRegion(t, b, Prot.ReadWrite);
        t.WriteInts(map, n, i => i);
        MigrateBlock(t, b, map, npages);
        AssertEq(0, Flags(t, b, MirrorFile.FlagFailAlloc), "ret");
        ulong oldPtr = b.Ptr;
        b.Ptr = map;
        int ret = t.DmirrorCmd(t.Fd, MirrorIoctl.MigrateToSystem, b, npages);
        b.Ptr = oldPtr;
        AssertEq(0, ret, "ret");
        AssertEq(2048, t.ReadInts(map + 2048 * 4, 1)[0], "ptr[2048]");
        t.Free(b);
    }

    // The same with the huge zero page.
    private static void MigrateAnonHugeZeroErr(SelftestContext t)
    {
        var mm = t.Process.Mm;
        var b = t.AllocBuffer(2 * TwoMeg, 2 * TwoMeg);
        ulong map = MapHugeRegion(t, b, Prot.Read);
        ulong npages = TwoMeg >> t.PageShift;
        int n = (int)(TwoMeg / 4);
        AssertEq(0, Flags(t, b, MirrorFile.FlagFailAlloc), "ret");
        MigrateBlock(t, b, map, npages);
        AssertInts(t.ReadInts(b.Mirror, n), _ => 0, "mirror");
        AssertEq(0, t.ReadInts(map + 2048 * 4, 1)[0], "ptr[2048]");
        AssertEq(Errno.Ok, mm.Munmap(b.Ptr, b.Size), "munmap");
        map = MapHugeRegion(t, b, Prot.Read);
        AssertEq(0, t.ReadInts(map, 1)[0], "ptr[0]");
        AssertEq(0, Flags(t, b, MirrorFile.FlagFailAlloc), "ret");
        MigrateBlock(t, b, map, npages);
        AssertInts(t.ReadInts(map, n), _ => 0, "ptr");
        t.Free(b);
    }
}
