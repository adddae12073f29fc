using HmmEmu.Hardware.Interrupts;
using HmmEmu.Hardware.Registers;

namespace HmmEmu.Hardware.Tests.Interrupts;

/// <summary>INT_STATUS/INT_MASK semantics and vector routing of the interrupt-cause block.</summary>
public sealed class InterruptCausesTests
{
    private const ulong StatusAt = 0x10;
    private const ulong MaskAt = 0x14;
    private const uint Done = 1u << 0;
    private const uint Error = 1u << 1;
    private const uint Reset = 1u << 2;
    private const uint Fault = 1u << 5;

    // DONE and RESET share vector 0, FAULT is on 1, ERROR on 2.
    private static (RegisterFile File, InterruptCauses Causes, RecordingSink Sink) NewBlock()
    {
        var file = new RegisterFile("test.bar0", 0x100);
        var msix = new MsixTable(3);
        var sink = new RecordingSink();
        msix.Connect(sink);
        var causes = new InterruptCauses(file, msix,
            [new("RESET", Reset, 0), new("ERROR", Error, 2), new("FAULT", Fault, 1), new("DONE", Done, 0)],
            StatusAt, "Causes.", MaskAt, "Mask.");
        return (file, causes, sink);
    }

    [Fact]
    public void Define_FourCauses_StatusHasOneW1cFieldPerCauseAndMaskCoversThem()
    {
        var (file, causes, _) = NewBlock();

        var status = file.Get("INT_STATUS");
        var mask = file.Get("INT_MASK");

        Assert.Equal(StatusAt, status.Offset);
        Assert.Equal(Done | Error | Reset | Fault, status.WriteOneToClearMask);
        Assert.Equal(["RESET", "ERROR", "FAULT", "DONE"], status.Fields.Select(f => f.Name));
        Assert.Equal(MaskAt, mask.Offset);
        Assert.Equal(Done | Error | Reset | Fault, mask.ReadWriteMask);
        Assert.Equal(Done | Error | Reset | Fault, causes.AllCauses);
    }

    [Fact]
    public void Raise_UnmaskedCause_LatchesItAndSendsItsVector()
    {
        var (file, causes, sink) = NewBlock();

        causes.Raise(Fault);

        Assert.Equal(Fault, causes.Latched);
        Assert.Equal((ulong)Fault, file.Read(StatusAt, 4));
        Assert.Equal([1], sink.Vectors);
    }

    [Fact]
    public void Raise_MaskedCause_LatchesItWithoutSending()
    {
        var (file, causes, sink) = NewBlock();
        file.Write(MaskAt, 4, Error);

        causes.Raise(Error);

        Assert.Equal(Error, causes.Latched);
        Assert.Empty(sink.Vectors);
    }

    [Fact]
    public void Raise_OtherCauseMasked_StillSendsThisOne()
    {
        var (file, causes, sink) = NewBlock();
        file.Write(MaskAt, 4, Error);

        causes.Raise(Done);

        Assert.Equal([0], sink.Vectors);
    }

    [Fact]
    public void MaskWrite_UnmaskingALatchedCause_SendsItsVector()
    {
        var (file, causes, sink) = NewBlock();
        file.Write(MaskAt, 4, Error);
        causes.Raise(Error);

        file.Write(MaskAt, 4, 0);

        Assert.Equal([2], sink.Vectors);
    }

    [Fact]
    public void MaskWrite_CauseClearedBeforeUnmask_SendsNothing()
    {
        var (file, causes, sink) = NewBlock();
        file.Write(MaskAt, 4, Error);
        causes.Raise(Error);
        file.Write(StatusAt, 4, Error);

        file.Write(MaskAt, 4, 0);

        Assert.Equal(0u, causes.Latched);
        Assert.Empty(sink.Vectors);
    }

    [Fact]
    public void MaskWrite_LatchedCauseStillMasked_SendsNothing()
    {
        var (file, causes, sink) = NewBlock();
        file.Write(MaskAt, 4, Error | Done);
        causes.Raise(Error);

        file.Write(MaskAt, 4, Error);

        Assert.Empty(sink.Vectors);
    }

    [Fact]
    public void MaskWrite_CausesOnSeveralVectors_SendsEachVectorOnceInVectorOrder()
    {
        var (file, causes, sink) = NewBlock();
        file.Write(MaskAt, 4, causes.AllCauses);
        causes.Raise(Error);
        causes.Raise(Reset);
        causes.Raise(Fault);
        causes.Raise(Done);

        file.Write(MaskAt, 4, 0);

        Assert.Equal([0, 1, 2], sink.Vectors);
    }

    [Fact]
    public void Raise_TwoCausesOfOneVector_SendsThatVectorOnce()
    {
        var (_, causes, sink) = NewBlock();

        causes.Raise(Done | Reset);

        Assert.Equal(Done | Reset, causes.Latched);
        Assert.Equal([0], sink.Vectors);
    }

    [Fact]
    public void StatusWrite_OneToALatchedCause_ClearsOnlyThatCause()
    {
        var (file, causes, _) = NewBlock();
        causes.Raise(Done);
        causes.Raise(Fault);

        file.Write(StatusAt, 4, Done);

        Assert.Equal(Fault, causes.Latched);
    }

    [Fact]
    public void FileReset_LatchedAndMasked_ClearsBoth()
    {
        var (file, causes, _) = NewBlock();
        file.Write(MaskAt, 4, Fault);
        causes.Raise(Fault);

        file.Reset();

        Assert.Equal(0u, causes.Latched);
        Assert.Equal(0UL, causes.Mask.Value);
    }

    [Fact]
    public void VectorOf_DeclaredCause_ReturnsItsRoute()
    {
        var (_, causes, _) = NewBlock();

        Assert.Equal(0, causes.VectorOf(Reset));
        Assert.Equal(1, causes.VectorOf(Fault));
        Assert.Equal(2, causes.VectorOf(Error));
    }

    [Fact]
    public void Raise_UndeclaredBit_ThrowsAndLatchesNothing()
    {
        var (_, causes, sink) = NewBlock();

        Assert.Throws<ArgumentException>(() => causes.Raise(1u << 3));
        Assert.Equal(0u, causes.Latched);
        Assert.Empty(sink.Vectors);
    }

    [Fact]
    public void Create_VectorOutsideTable_Throws()
    {
        var file = new RegisterFile("test.bar0", 0x100);

        var e = Assert.Throws<ArgumentException>(() =>
            new InterruptCauses(file, new MsixTable(2), [new("DONE", Done, 2)], StatusAt, "", MaskAt, ""));

        Assert.Contains("vector 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_TwoCausesOnOneBit_Throws()
    {
        var file = new RegisterFile("test.bar0", 0x100);

        Assert.Throws<ArgumentException>(() =>
            new InterruptCauses(file, new MsixTable(2), [new("A", Done, 0), new("B", Done, 1)], StatusAt, "", MaskAt, ""));
    }

    [Fact]
    public void Create_CauseWithTwoBits_Throws()
    {
        var file = new RegisterFile("test.bar0", 0x100);

        Assert.Throws<ArgumentException>(() =>
            new InterruptCauses(file, new MsixTable(2), [new("A", Done | Error, 0)], StatusAt, "", MaskAt, ""));
    }
}
