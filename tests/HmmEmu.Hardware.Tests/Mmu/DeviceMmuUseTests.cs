using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Mmu;

public sealed class DeviceMmuUseTests
{
    private const ushort A = 1;
    private const ulong Va = 0x40_0000;

    [Fact]
    public void Translate_UntrackedUse_ThrowsNamingBeginUse()
    {
        using var m = new MmuTestMachine();
        var mmu = m.CreateMmu();

        var ex = Assert.Throws<InvalidOperationException>(() => mmu.Translate(TranslationUse.Untracked, A, Va, Access.Read));

        Assert.Contains("BeginUse", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_EndedUse_Throws()
    {
        using var m = new MmuTestMachine();
        var mmu = m.CreateMmu();
        var use = mmu.BeginUse();
        mmu.EndUse(use);

        var ex = Assert.Throws<InvalidOperationException>(() => mmu.Translate(use, A, Va, Access.Read));

        Assert.Contains("already ended", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EndUse_Twice_Throws()
    {
        using var m = new MmuTestMachine();
        var mmu = m.CreateMmu();
        var use = mmu.BeginUse();
        mmu.EndUse(use);

        Assert.Throws<InvalidOperationException>(() => mmu.EndUse(use));
    }

    [Fact]
    public void Translate_EmptyAccess_Throws()
    {
        using var m = new MmuTestMachine();
        var mmu = m.CreateMmu();
        var use = mmu.BeginUse();

        Assert.Throws<ArgumentOutOfRangeException>(() => mmu.Translate(use, A, Va, 0));
    }

    [Fact]
    public void Translate_AddressOf48BitsOrMore_IsOutOfRange()
    {
        using var m = new MmuTestMachine();
        var mmu = m.CreateMmu();
        var use = mmu.BeginUse();

        Assert.Equal(TranslationStatus.OutOfRange, mmu.Translate(use, A, 1UL << 48, Access.Read).Status);
    }

    [Fact]
    public void BeginUse_EndUse_ReusesSlotsAndCountsActiveUses()
    {
        using var m = new MmuTestMachine();
        var mmu = m.CreateMmu(new DeviceMmuOptions { UseSlots = 2 });

        var a = mmu.BeginUse();
        var b = mmu.BeginUse();
        Assert.Equal(2, mmu.Tlb.ActiveUses);
        mmu.EndUse(a);
        var c = mmu.BeginUse();

        Assert.Equal(a.Slot, c.Slot);
        Assert.NotEqual(b.Slot, c.Slot);
        mmu.Tlb.AssertInvariants();
    }

    [Fact]
    public void BeginUse_PoolExhausted_WaitsUntilAUseEnds()
    {
        using var m = new MmuTestMachine();
        var mmu = m.CreateMmu(new DeviceMmuOptions { UseSlots = 1 });
        int gotSlot = 0;
        int gotSlotBeforeEnd = -1;

        m.Kernel.Run(() =>
        {
            var held = mmu.BeginUse();
            var second = m.Scheduler.Spawn("second", () =>
            {
                var use = mmu.BeginUse();
                Volatile.Write(ref gotSlot, 1);
                mmu.EndUse(use);
            }, SimThreadKind.Device);
            m.Scheduler.Sleep(1_000);
            gotSlotBeforeEnd = Volatile.Read(ref gotSlot);
            mmu.EndUse(held);
            second.Join();
        });

        Assert.Equal(0, gotSlotBeforeEnd);
        Assert.Equal(1, gotSlot);
    }

    [Fact]
    public void Probe_MappedPage_WalksWithoutFillingTheTlb()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        ulong page = m.MapNewPage(A, Va);
        var mmu = m.CreateMmu();

        var r = mmu.Probe(A, Va, Access.Write);

        Assert.Equal(TranslationStatus.Ok, r.Status);
        Assert.Equal(page, r.Page.Address);
        Assert.False(mmu.Tlb.Contains(A, Va));
    }

    [Fact]
    public void Roots_SharedByTwoEngines_EachEngineHasItsOwnTlb()
    {
        using var m = new MmuTestMachine();
        m.CreateRoot(A);
        m.MapNewPage(A, Va);
        var engine0 = m.CreateMmu(new DeviceMmuOptions { Name = "e0" });
        var engine1 = m.CreateMmu(new DeviceMmuOptions { Name = "e1" });
        var use = engine0.BeginUse();
        Assert.True(engine0.Translate(use, A, Va, Access.Read).IsOk);
        engine0.EndUse(use);

        Assert.True(engine0.Tlb.Contains(A, Va));
        Assert.False(engine1.Tlb.Contains(A, Va));
    }

    [Fact]
    public void Roots_AsidBeyondCapacity_ThrowsNamingContains()
    {
        var roots = new PageTableRoots(4);

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => roots[4] = DevicePte.Invalid);

        Assert.Contains("Contains", ex.Message, StringComparison.Ordinal);
    }
}
