using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Registers;
using HmmEmu.Hardware.Rings;

namespace HmmEmu.Hardware.Tests.Dma;

/// <summary>A DMA engine's ring registers in a BAR: layout, latch-on-enable, doorbells and the engine's indices.</summary>
public sealed class DmaEngineRegistersTests
{
    private const ulong At = 0x100;

    /// <summary>A BAR holding the block over a <see cref="DmaRig"/>'s engine, with an enable flag and the refused writes.</summary>
    private sealed class Bar
    {
        public bool Enabled;
        public readonly List<(string Name, ulong Value)> Refused = [];
        public readonly RegisterFile File = new("test.bar0", 0x1000);
        public readonly DmaEngineRegisters Block;

        public Bar(DmaEngine engine, DmaEngineRegisterLayout? layout = null) =>
            Block = new DmaEngineRegisters(File, engine, layout ?? new DmaEngineRegisterLayout { Offset = At },
                () => Enabled, (r, v) => Refused.Add((r.Name, v)));

        public ulong Read(ulong relative, int size = 4) => File.Read(At + relative, size);

        public void Write(ulong relative, ulong value, int size = 4) => File.Write(At + relative, size, value);
    }

    [Fact]
    public void Define_WithPrefix_RegistersSitAtTheBlockOffsetsWithPrefixedNames()
    {
        using var rig = DmaRig.Create();

        var bar = new Bar(rig.Engine, new DmaEngineRegisterLayout { Offset = At, Prefix = "CE_" });

        Assert.Equal(
            [
                (0x100UL, "CE_SQ_BASE", 8), (0x108UL, "CE_SQ_SIZE", 4), (0x10CUL, "CE_SQ_TAIL", 4), (0x110UL, "CE_SQ_HEAD", 4),
                (0x118UL, "CE_SQ_STATUS", 8), (0x120UL, "CE_CQ_BASE", 8), (0x128UL, "CE_CQ_SIZE", 4), (0x12CUL, "CE_CQ_HEAD", 4),
                (0x130UL, "CE_CQ_TAIL", 4), (0x138UL, "CE_CQ_STATUS", 8),
            ],
            bar.File.Registers.Select(r => (r.Offset, r.Name, r.SizeBytes)));
        Assert.Equal(At + DmaEngineRegisters.Size, bar.File.Registers[^1].Offset + 8);
    }

    [Fact]
    public void Define_OneDescriptionReworded_OnlyThatRegisterChanges()
    {
        using var rig = DmaRig.Create();
        var defaults = new DmaEngineRegisterLayout { Offset = At };

        var bar = new Bar(rig.Engine, defaults with { SqHeadDescription = "Reworded." });

        Assert.Equal("Reworded.", bar.File.Get("SQ_HEAD").Description);
        Assert.Equal(defaults.SqTailDescription, bar.File.Get("SQ_TAIL").Description);
    }

    [Fact]
    public void RingBaseWrite_WhileEnabled_IsRefusedAndReported()
    {
        using var rig = DmaRig.Create();
        var bar = new Bar(rig.Engine);
        bar.Write(DmaEngineRegisters.CqBaseOffset, 0x5000, 8);
        bar.Enabled = true;

        bar.Write(DmaEngineRegisters.CqBaseOffset, 0x7000, 8);

        Assert.Equal(0x5000UL, bar.Read(DmaEngineRegisters.CqBaseOffset, 8));
        Assert.Equal(0x5000UL, bar.Block.CompletionBase.Value);
        Assert.Equal([("CQ_BASE", 0x7000UL)], bar.Refused);
    }

    [Fact]
    public void ConfigureEngine_LatchedRings_ProgramsBothEngineRings()
    {
        using var rig = DmaRig.Create();
        var bar = new Bar(rig.Engine);
        ulong sq = rig.Alloc(1), cq = rig.Alloc(1);
        bar.Write(DmaEngineRegisters.SqBaseOffset, sq, 8);
        bar.Write(DmaEngineRegisters.SqSizeOffset, 8);
        bar.Write(DmaEngineRegisters.CqBaseOffset, cq, 8);
        bar.Write(DmaEngineRegisters.CqSizeOffset, 4);

        bar.Block.ConfigureEngine();

        Assert.Equal((sq, 8), (rig.Engine.Submission.BaseAddress, rig.Engine.Submission.EntryCount));
        Assert.Equal((cq, 4), (rig.Engine.Completion.BaseAddress, rig.Engine.Completion.EntryCount));
        Assert.Equal((ulong)RingState.Running, bar.Read(DmaEngineRegisters.SqStatusOffset, 8));
        Assert.Equal((ulong)RingState.Running, bar.Read(DmaEngineRegisters.CqStatusOffset, 8));
    }

    [Fact]
    public void ConfigureEngine_ZeroRingByDefault_StopsItAsABadSize()
    {
        using var rig = DmaRig.Create();
        var bar = new Bar(rig.Engine);

        bar.Block.ConfigureEngine();

        Assert.Equal(RingState.Stopped, rig.Engine.Submission.Status.State);
        Assert.Equal(RingError.BadSize, rig.Engine.Submission.Status.Error);
        Assert.Equal(RingState.Stopped, rig.Engine.Completion.Status.State);
    }

    [Fact]
    public void ConfigureEngine_ZeroRingWhenUnusedWhenZero_LeavesTheEngineRingsAlone()
    {
        using var rig = DmaRig.Create();
        var bar = new Bar(rig.Engine, new DmaEngineRegisterLayout { Offset = At, RingUnusedWhenZero = true });

        bar.Block.ConfigureEngine();

        Assert.Equal((rig.SqBase, RingState.Running), (rig.Engine.Submission.BaseAddress, rig.Engine.Submission.Status.State));
        Assert.Equal((rig.CqBase, RingState.Running), (rig.Engine.Completion.BaseAddress, rig.Engine.Completion.Status.State));
        Assert.Equal(0, rig.Interrupts.Errors);
    }

    [Fact]
    public void SqTail_WhileDisabled_IsRefusedAndTheEngineIsNotRung()
    {
        using var rig = DmaRig.Create();
        var bar = new Bar(rig.Engine);

        bar.Write(DmaEngineRegisters.SqTailOffset, 1);

        Assert.Equal([("SQ_TAIL", 1UL)], bar.Refused);
        Assert.Equal(0u, rig.Engine.Submission.Producer);
    }

    [Fact]
    public void SqTailAndCqHead_WhileEnabled_CopyCompletesAndTheIndicesReadBack()
    {
        using var rig = DmaRig.Create();
        var bar = new Bar(rig.Engine) { Enabled = true };
        ulong src = rig.Alloc(1), dst = rig.Alloc(1);
        rig.Fill(src, 64, i => (byte)(i + 1));
        ulong cqTail = 0, sqHead = 0;

        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.Copy(src, dst, 64, cookie: 1), ring: false);
            bar.Write(DmaEngineRegisters.SqTailOffset, 1);
            rig.WaitFor(() => bar.Read(DmaEngineRegisters.CqTailOffset) == 1, "the completion");
            cqTail = bar.Read(DmaEngineRegisters.CqTailOffset);
            sqHead = bar.Read(DmaEngineRegisters.SqHeadOffset);
            bar.Write(DmaEngineRegisters.CqHeadOffset, 1);
        });

        Assert.Equal((1UL, 1UL), (cqTail, sqHead));
        Assert.Equal(1UL, bar.Read(DmaEngineRegisters.SqTailOffset));
        Assert.Equal(1u, rig.Engine.Completion.Consumer);
        Assert.Equal(rig.Read(src, 64), rig.Read(dst, 64));
        Assert.Empty(bar.Refused);
    }
}
