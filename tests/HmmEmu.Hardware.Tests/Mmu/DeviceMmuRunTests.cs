using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Hardware.Tests.Mmu;

/// <summary>
/// <see cref="DeviceMmu.TranslateRun"/>: one answer for a page and the following pages the use already holds, which
/// must be exactly what translating each of them on its own would give, and never reach past what an invalidation
/// waits for.
/// </summary>
public sealed class DeviceMmuRunTests
{
    private const ushort A = 1;
    private const ulong Page = 4096;
    private const ulong Va = 0x40_0000;     // 2 MiB aligned: its first forward group starts at page 0

    public enum RunBreak
    {
        PhysicalGap,
        SameAddressOtherAperture,
        MissingRight,
        NotCached,
    }

    // Maps `pages` pages from Va, in order, onto consecutive fresh VRAM pages; returns the VRAM address of the first.
    private static ulong MapContiguous(MmuTestMachine m, int pages)
    {
        m.CreateRoot(A);
        ulong first = m.AllocPage(Aperture.Vram);
        m.Map(A, Va, DevicePte.Leaf(Aperture.Vram, first, PtePermissions.ReadWrite));
        for (int p = 1; p < pages; p++)
        {
            ulong vram = m.AllocPage(Aperture.Vram);
            Assert.Equal(first + ((ulong)p * Page), vram);
            m.Map(A, Va + ((ulong)p * Page), DevicePte.Leaf(Aperture.Vram, vram, PtePermissions.ReadWrite));
        }
        return first;
    }

    // Translates each page once in a use of its own, so that the TLB holds them; `skip` is left out.
    private static void Warm(DeviceMmu mmu, int pages, int skip = -1)
    {
        var use = mmu.BeginUse();
        for (int p = 0; p < pages; p++)
        {
            if (p != skip)
                Assert.True(mmu.Translate(use, A, Va + ((ulong)p * Page), Access.Read).IsOk);
        }
        mmu.EndUse(use);
    }

    [Fact]
    public void TranslateRun_ContiguousCachedPages_SpansWhatTheUseHasRecordedAndCountsEveryPageAsAHit()
    {
        const int g = (int)InFlightUses.ForwardGroupPages;
        using var m = new MmuTestMachine();
        ulong vram = MapContiguous(m, 2 * g);
        var mmu = m.CreateMmu();
        TranslationResult first = default, second = default, third = default;
        long hits = 0, misses = 0;

        m.Kernel.Run(() =>
        {
            Warm(mmu, 2 * g);
            (hits, misses) = (mmu.Stats.Hits, mmu.Stats.Misses);
            var use = mmu.BeginUse();
            first = mmu.TranslateRun(use, A, Va + 100, Access.Read, ulong.MaxValue);
            second = mmu.TranslateRun(use, A, Va + Page, Access.Read, ulong.MaxValue);
            third = mmu.TranslateRun(use, A, Va + ((ulong)g * Page), Access.Read, 3 * Page);
            mmu.EndUse(use);
        });

        // A use's first page is recorded alone; the next page extends the record to the end of its group.
        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.Vram, vram + 100, Page - 100), first);
        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.Vram, vram + Page, (ulong)(g - 1) * Page), second);
        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.Vram, vram + ((ulong)g * Page), 3 * Page), third);
        Assert.Equal(hits + 1 + (g - 1) + 3, mmu.Stats.Hits);
        Assert.Equal(misses, mmu.Stats.Misses);
    }

    [Theory]
    [InlineData(RunBreak.PhysicalGap)]
    [InlineData(RunBreak.SameAddressOtherAperture)]
    [InlineData(RunBreak.MissingRight)]
    [InlineData(RunBreak.NotCached)]
    public void TranslateRun_StopsBeforeThePageThatDoesNotContinueIt(RunBreak kind)
    {
        using var m = new MmuTestMachine();
        ulong vram = MapContiguous(m, 16);
        ulong fifth = Va + (5 * Page);
        switch (kind)
        {
            case RunBreak.PhysicalGap:
                m.Map(A, fifth, DevicePte.Leaf(Aperture.Vram, vram + (20 * Page), PtePermissions.ReadWrite));
                break;
            case RunBreak.SameAddressOtherAperture:
                m.Map(A, fifth, DevicePte.Leaf(Aperture.System, vram + (5 * Page), PtePermissions.ReadWrite));
                break;
            case RunBreak.MissingRight:
                m.Map(A, fifth, DevicePte.Leaf(Aperture.Vram, vram + (5 * Page), PtePermissions.Read));
                break;
        }
        var mmu = m.CreateMmu();
        TranslationResult run = default, fifthAlone = default;

        m.Kernel.Run(() =>
        {
            Warm(mmu, 16, skip: kind == RunBreak.NotCached ? 5 : -1);
            var use = mmu.BeginUse();
            Assert.True(mmu.TranslateRun(use, A, Va, Access.Write, ulong.MaxValue).IsOk);
            run = mmu.TranslateRun(use, A, Va + Page, Access.Write, ulong.MaxValue);
            fifthAlone = mmu.Translate(use, A, fifth, Access.Write);
            mmu.EndUse(use);
        });

        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.Vram, vram + Page, 4 * Page), run);
        // The page itself still translates on its own terms.
        var expected = kind switch
        {
            RunBreak.PhysicalGap => new TranslationResult(TranslationStatus.Ok, Aperture.Vram, vram + (20 * Page), Page),
            RunBreak.SameAddressOtherAperture => new TranslationResult(TranslationStatus.Ok, Aperture.System, vram + (5 * Page), Page),
            RunBreak.MissingRight => TranslationResult.Fail(TranslationStatus.Permission),
            _ => new TranslationResult(TranslationStatus.Ok, Aperture.Vram, vram + (5 * Page), Page),
        };
        Assert.Equal(expected, fifthAlone);
    }

    [Fact]
    public void InvalidatePage_InsideARunTheUseHolds_WaitsForTheUse_AndARunTranslatedAfterItStopsBeforeThePage()
    {
        using var m = new MmuTestMachine();
        ulong vram = MapContiguous(m, 16);
        var mmu = m.CreateMmu();
        TranslationResult before = default, after = default;
        bool completeWhileHeld = true, completeAfterEnd = false;

        m.Kernel.Run(() =>
        {
            Warm(mmu, 16);
            var use = mmu.BeginUse();
            Assert.True(mmu.TranslateRun(use, A, Va, Access.Read, ulong.MaxValue).IsOk);
            before = mmu.TranslateRun(use, A, Va + Page, Access.Read, ulong.MaxValue);
            var ticket = mmu.Tlb.InvalidatePage(A, Va + (10 * Page));
            completeWhileHeld = ticket.IsComplete;
            after = mmu.TranslateRun(use, A, Va + Page, Access.Read, ulong.MaxValue);
            mmu.EndUse(use);
            completeAfterEnd = ticket.IsComplete;
        });

        Assert.Equal(15 * Page, before.Length);
        Assert.False(completeWhileHeld);
        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.Vram, vram + Page, 9 * Page), after);
        Assert.True(completeAfterEnd);
    }

    [Fact]
    public void TranslateRun_MaxLengthWithinTheFirstPage_IsThePlainTranslation()
    {
        using var m = new MmuTestMachine();
        ulong vram = MapContiguous(m, 16);
        var mmu = m.CreateMmu();
        TranslationResult run = default;

        m.Kernel.Run(() =>
        {
            Warm(mmu, 16);
            var use = mmu.BeginUse();
            Assert.True(mmu.TranslateRun(use, A, Va, Access.Read, ulong.MaxValue).IsOk);
            run = mmu.TranslateRun(use, A, Va + Page + 8, Access.Read, 64);
            mmu.EndUse(use);
        });

        Assert.Equal(new TranslationResult(TranslationStatus.Ok, Aperture.Vram, vram + Page + 8, Page - 8), run);
    }
}
