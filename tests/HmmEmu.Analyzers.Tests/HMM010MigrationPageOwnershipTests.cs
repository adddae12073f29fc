using Microsoft.CodeAnalysis.Testing;
using Rule = HmmEmu.Analyzers.HMM010MigrationPageOwnershipAnalyzer;
using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM010MigrationPageOwnershipAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM010MigrationPageOwnershipTests
{
    // A migrating driver: the kernel's PhysicalMemory, a VRAM pool with a driver allocator, a copy that can fail.
    private static string Migrator(string members) => """
        using System;
        using HmmEmu.Kernel;
        using HmmEmu.Kernel.Memory;
        using HmmEmu.Kernel.Migration;

        public sealed class Vram
        {
            public bool TryAlloc(out ulong pfn) { pfn = 0; return false; }
            public ulong OffsetOf(ulong pfn) => pfn;
        }

        public sealed class TestMigrator
        {
            private readonly PhysicalMemory _mem = null!;
            private readonly Vram _vram = new();

            private Errno Copy(ulong dst, ulong src) => Errno.Ok;

        """ + string.Join("\n", members.Split('\n').Select(l => l.Length == 0 ? l : "    " + l)) + "\n}\n";

    private static DiagnosticResult Leak(int location, string page, string what) =>
        Verify.Diagnostic(Rule.LeakDescriptor).WithLocation(location).WithArguments(page, what);

    private static DiagnosticResult DoubleFree(int location, string page, string why) =>
        Verify.Diagnostic(Rule.DoubleFreeDescriptor).WithLocation(location).WithArguments(page, why);

    private static DiagnosticResult Unchecked(int location) =>
        Verify.Diagnostic(Rule.UncheckedSourceDescriptor).WithLocation(location);

    // ---- (a) leaks ---------------------------------------------------------------------------------------------------

    [Fact]
    public async Task DevicePage_LeakedOnCopyErrorReturn_Flags()
    {
        await Verify.AnalyzerAsync(Migrator("""
            public Errno ToVram(MigrateVma args)
            {
                for (ulong i = 0; i < args.NPages; i++)
                {
                    ulong src = args.Src![i];
                    if ((src & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(src) is not ulong spfn)
                        continue;
                    if (!{|#0:_vram.TryAlloc(out ulong dpfn)|})
                        continue;
                    _mem.LockPage(dpfn);
                    if (Copy(dpfn, spfn) != Errno.Ok)
                        return Errno.EIO;            // dpfn is neither in Dst nor freed
                    args.Dst![i] = MigratePfn.From(dpfn);
                }
                return Errno.Ok;
            }
            """), Leak(0, "dpfn", "returns"));
    }

    [Fact]
    public async Task SystemPage_LeakedOnContinue_FlagsAtTheAllocation()
    {
        // Reported once per allocation: the loop exit reaches it leaked before the next iteration's allocation does.
        await Verify.AnalyzerAsync(Migrator("""
            public void ToSystem(ulong[] src, ulong[] dst)
            {
                for (int i = 0; i < src.Length; i++)
                {
                    if ((src[i] & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(src[i]) is not ulong spfn)
                        continue;
                    if ({|#0:_mem.AllocPage(Gfp.HighUser, out ulong page)|} != Errno.Ok)
                        continue;
                    _mem.LockPage(page);
                    if (Copy(page, spfn) != Errno.Ok)
                        continue;                    // the page is dropped on the floor
                    dst[i] = MigratePfn.From(page) | (src[i] & MigratePfn.Write);
                }
            }
            """), Leak(0, "page", "returns"));
    }

    // ---- (b) double frees ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task Page_FreedOnErrorPathButLeftInDst_ThenFinalized_Flags()
    {
        await Verify.AnalyzerAsync(Migrator("""
            public void ToVram(MigrateVma args)
            {
                for (ulong i = 0; i < args.NPages; i++)
                {
                    ulong src = args.Src![i];
                    if ((src & MigratePfn.Migrate) == 0 || MigratePfn.ToPfn(src) is not ulong spfn)
                        continue;
                    if (!_vram.TryAlloc(out ulong dpfn))
                        continue;
                    args.Dst![i] = MigratePfn.From(dpfn);
                    if (Copy(dpfn, spfn) != Errno.Ok)
                    {
                        _mem.UnlockPage(dpfn);
                        {|#0:_mem.PutPage(dpfn)|};       // Dst[i] still names it
                    }
                }
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
            }
            """), DoubleFree(0, "dpfn", "it is freed here while Dst still names it, and Dst is handed to the kernel here, which drops it again; clear the entry (Dst[i] = 0) after freeing"));
    }

    [Fact]
    public async Task Page_FreedAfterFinalize_AndFreedTwice_Flags()
    {
        await Verify.AnalyzerAsync(Migrator("""
            public void One(MigrateVma args)
            {
                if ((args.Src![0] & MigratePfn.Migrate) == 0 || !_vram.TryAlloc(out ulong dpfn))
                    return;
                _mem.LockPage(dpfn);
                args.Dst![0] = MigratePfn.From(dpfn);
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
                {|#0:_mem.PutPage(dpfn)|};               // finalize already dropped it
            }

            public void Twice(bool failed)
            {
                if (_mem.AllocPage(Gfp.HighUser, out ulong page) != Errno.Ok)
                    return;
                if (failed)
                    _mem.PutPage(page);
                {|#1:_mem.PutPage(page)|};
            }
            """),
            DoubleFree(0, "dpfn", "the migration already took it (migrate pages/finalize drops it), and this PutPage drops it again"),
            DoubleFree(1, "page", "a path reaching this PutPage already freed it"));
    }

    // ---- (c) unselected source entries ------------------------------------------------------------------------------------

    [Fact]
    public async Task DstStored_WithoutTestingMigrate_Flags()
    {
        await Verify.AnalyzerAsync(Migrator("""
            public void ToVram(MigrateVma args)
            {
                for (ulong i = 0; i < args.NPages; i++)
                {
                    ulong? spfn = MigratePfn.ToPfn(args.Src![i]);
                    if (spfn is null || !_vram.TryAlloc(out ulong dpfn))
                        continue;
                    {|#0:args.Dst![i] = MigratePfn.From(dpfn)|};
                }
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
            }

            public void Evict(DeviceMigration m)
            {
                for (int i = 0; i < m.Src.Length; i++)
                {
                    if ((m.Src[i] & MigratePfn.Valid) == 0)       // VALID is not MIGRATE
                        continue;
                    if (_mem.AllocPage(Gfp.HighUser, out ulong page) != Errno.Ok)
                        continue;
                    _mem.LockPage(page);
                    {|#1:m.Dst[i] = MigratePfn.From(page)|};
                }
                m.Pages();
                m.Complete();
            }
            """), Unchecked(0), Unchecked(1));
    }

    // ---- must not flag ----------------------------------------------------------------------------------------------------

    [Fact]
    public async Task GpuToVramChunkShape_DoesNotFlag()
    {
        // GpuMigrator.ToVramChunk: MIGRATE tested, the page freed on the DMA-map error path before it is installed,
        // installed otherwise, every destination released on a copy error, then pages and finalize.
        await Verify.AnalyzerAsync(Migrator("""
            public void ToVram(MigrateVma args, bool mapFails)
            {
                for (ulong i = 0; i < args.NPages; i++)
                {
                    ulong src = args.Src![i];
                    if ((src & MigratePfn.Migrate) == 0)
                        continue;
                    ulong? spfn = MigratePfn.ToPfn(src);
                    if (!_vram.TryAlloc(out ulong dpfn))
                        continue;
                    if (mapFails)
                    {
                        _mem.UnlockPage(dpfn);
                        _mem.PutPage(dpfn);
                        continue;
                    }
                    bool write = (src & MigratePfn.Write) != 0;
                    args.Dst![i] = MigratePfn.From(dpfn) | (write ? MigratePfn.Write : 0);
                }
                if (mapFails)
                    Release(args.Dst!);
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
            }

            private void Release(ulong[] dst)
            {
                for (int i = 0; i < dst.Length; i++)
                {
                    if (MigratePfn.ToPfn(dst[i]) is ulong d)
                    {
                        _mem.UnlockPage(d);
                        _mem.PutPage(d);
                        dst[i] = 0;
                    }
                }
            }
            """));
    }

    [Fact]
    public async Task FreeThenClearDst_AndPageHandedToAHelper_DoNotFlag()
    {
        await Verify.AnalyzerAsync(Migrator("""
            private readonly System.Collections.Generic.List<ulong> _pool = new();

            public void ToSystem(MigrateVma args)
            {
                for (ulong i = 0; i < args.NPages; i++)
                {
                    ulong src = args.Src![i];
                    if ((src & (MigratePfn.Valid | MigratePfn.Migrate)) != (MigratePfn.Valid | MigratePfn.Migrate))
                        continue;
                    if (_mem.AllocPage(Gfp.HighUser, out ulong page) != Errno.Ok)
                        continue;
                    _mem.LockPage(page);
                    args.Dst![i] = MigratePfn.From(page) | (src & MigratePfn.Write);
                    if (Copy(page, MigratePfn.ToPfn(src)!.Value) != Errno.Ok)
                    {
                        _mem.UnlockPage(page);
                        _mem.PutPage(page);
                        args.Dst[i] = 0;               // taken back before the kernel sees it
                    }
                }
                Migrate.VmaPages(args);
                Migrate.VmaFinalize(args);
            }

            public Errno Spare()
            {
                if (_mem.AllocPage(Gfp.HighUser, out ulong page) != Errno.Ok)
                    return Errno.ENOMEM;
                _pool.Add(page);                       // owned by the pool now
                return Errno.Ok;
            }
            """));
    }

    [Fact]
    public async Task DstEntryReadIntoALocal_AndPageKeptInAKernelTable_DoNotFlag()
    {
        // MirrorDevice.ReleaseDestinations reads Dst entries (a read, not a store); B2's EnsurePageTable keeps its page
        // in an XArray (Store keeps it).
        await Verify.AnalyzerAsync(Migrator("""
            private readonly HmmEmu.Kernel.Collections.XArray<ulong> _tables = null!;

            public Errno Release(MigrateVma args, ulong upTo)
            {
                for (ulong i = 0; i < upTo; i++)
                {
                    ulong dst = args.Dst![i];
                    if (MigratePfn.ToPfn(dst) is not ulong d)
                        continue;
                    _mem.UnlockPage(d);
                    _mem.PutPage(d);
                    args.Dst[i] = 0;
                }
                return Errno.ENOMEM;
            }

            public Errno EnsureTable(ulong index)
            {
                var err = _mem.AllocPage(Gfp.Kernel | Gfp.Zero, out ulong pfn);
                if (err != Errno.Ok)
                    return err;
                return _tables.Store(index, pfn, Gfp.Atomic);
            }
            """));
    }

    [Fact]
    public async Task MirrorAllocPageShape_ResultHeldInALocal_DoesNotFlag()
    {
        // MirrorDevice.AllocPage: the allocator's result through a conditional into 'err', the failure edge returns,
        // the page freed (frame by frame) when the device pool is empty.
        await Verify.AnalyzerAsync(Migrator("""
            public Errno AllocBacked(bool huge, bool poolEmpty)
            {
                ulong backing;
                var err = huge
                    ? _mem.AllocContiguous(9, Gfp.HighUser, out backing)
                    : _mem.AllocPage(Gfp.HighUser, out backing);
                if (err != Errno.Ok)
                    return err;
                if (poolEmpty)
                {
                    _mem.PutPage(backing);
                    return Errno.ENOMEM;
                }
                _mem.ClearPage(backing);
                _mem.PutPage(backing);
                return Errno.Ok;
            }

            public Errno Scratch()
            {
                var err = _mem.AllocPage(Gfp.HighUser, out ulong page);
                if (err != Errno.Ok)
                    return err;
                _mem.ClearPage(page);
                _mem.PutPage(page);
                return Errno.Ok;
            }
            """));
    }
}
