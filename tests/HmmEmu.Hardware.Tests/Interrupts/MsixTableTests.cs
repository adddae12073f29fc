using HmmEmu.Hardware.Interrupts;
using HmmEmu.Hardware.Registers;

namespace HmmEmu.Hardware.Tests.Interrupts;

/// <summary>Vector mask, pending bit, function mask and replay-once semantics of the interrupt table.</summary>
public sealed class MsixTableTests
{
    private static (MsixTable Table, RecordingSink Sink) NewTable(int vectors = 4, bool maskedAtReset = false)
    {
        var table = new MsixTable(vectors, maskedAtReset);
        var sink = new RecordingSink();
        table.Connect(sink);
        return (table, sink);
    }

    [Fact]
    public void Raise_UnmaskedVector_SendsMessageToSink()
    {
        var (t, sink) = NewTable();

        t.Raise(2);

        Assert.Equal([2], sink.Vectors);
    }

    [Fact]
    public void Raise_MaskedVector_SetsPendingAndSendsNothing()
    {
        var (t, sink) = NewTable();
        t.SetMasked(1, true);

        t.Raise(1);

        Assert.Empty(sink.Vectors);
        Assert.True(t.IsPending(1));
    }

    [Fact]
    public void Unmask_PendingVector_SendsOnceAndClearsPending()
    {
        var (t, sink) = NewTable();
        t.SetMasked(1, true);
        t.Raise(1);

        t.SetMasked(1, false);

        Assert.Equal([1], sink.Vectors);
        Assert.False(t.IsPending(1));
    }

    [Fact]
    public void Unmask_VectorRaisedThreeTimesWhileMasked_ReplaysExactlyOnce()
    {
        var (t, sink) = NewTable();
        t.SetMasked(0, true);
        t.Raise(0);
        t.Raise(0);
        t.Raise(0);

        t.SetMasked(0, false);

        Assert.Equal([0], sink.Vectors);
        Assert.Equal(1, t.Replayed);
    }

    [Fact]
    public void Unmask_MaskUnmaskAgainAfterReplay_DoesNotReplayTwice()
    {
        var (t, sink) = NewTable();
        t.SetMasked(0, true);
        t.Raise(0);
        t.SetMasked(0, false);

        t.SetMasked(0, true);
        t.SetMasked(0, false);

        Assert.Equal([0], sink.Vectors);
    }

    [Fact]
    public void Unmask_NothingPending_SendsNothing()
    {
        var (t, sink) = NewTable();
        t.SetMasked(3, true);

        t.SetMasked(3, false);

        Assert.Empty(sink.Vectors);
    }

    [Fact]
    public void Raise_FunctionMaskedVectorUnmasked_SetsPending()
    {
        var (t, sink) = NewTable();
        t.SetFunctionMasked(true);

        t.Raise(2);

        Assert.Empty(sink.Vectors);
        Assert.True(t.IsPending(2));
    }

    [Fact]
    public void FunctionUnmask_PendingVectors_ReplaysOnlyUnmaskedOnesInVectorOrder()
    {
        var (t, sink) = NewTable();
        t.SetMasked(1, true);
        t.SetFunctionMasked(true);
        t.Raise(3);
        t.Raise(1);
        t.Raise(0);

        t.SetFunctionMasked(false);

        Assert.Equal([0, 3], sink.Vectors);
        Assert.True(t.IsPending(1));
    }

    [Fact]
    public void UnmaskVector_WhileFunctionMasked_StaysPending()
    {
        var (t, sink) = NewTable();
        t.SetMasked(1, true);
        t.Raise(1);
        t.SetFunctionMasked(true);

        t.SetMasked(1, false);

        Assert.Empty(sink.Vectors);
        Assert.True(t.IsPending(1));
    }

    [Fact]
    public void Raise_NoSinkConnected_CountsDropped()
    {
        var t = new MsixTable(2);

        t.Raise(0);

        Assert.Equal(1, t.Dropped);
        Assert.Equal(0, t.Sent);
    }

    [Fact]
    public void Raise_VectorOutOfRange_Throws()
    {
        var (t, _) = NewTable(vectors: 2);

        Assert.Throws<ArgumentOutOfRangeException>(() => t.Raise(2));
    }

    [Fact]
    public void Construct_MaskedAtReset_EveryVectorStartsMasked()
    {
        var (t, sink) = NewTable(vectors: 70, maskedAtReset: true);

        t.Raise(69);

        Assert.True(t.IsMasked(0));
        Assert.True(t.IsMasked(69));
        Assert.Empty(sink.Vectors);
    }

    [Fact]
    public void Reset_AfterPendingAndFunctionMask_ClearsBoth()
    {
        var (t, _) = NewTable();
        t.SetMasked(0, true);
        t.Raise(0);
        t.SetFunctionMasked(true);

        t.Reset();

        Assert.False(t.IsPending(0));
        Assert.False(t.FunctionMasked);
        Assert.False(t.IsMasked(0));
    }

    [Fact]
    public void Unmask_TwoThreadsUnmaskPendingVectorAtOnce_ReplaysExactlyOnce()
    {
        var (t, sink) = NewTable(vectors: 1);
        const int Rounds = 500;

        for (int round = 0; round < Rounds; round++)
        {
            t.SetMasked(0, true);
            t.Raise(0);
            using var go = new Barrier(2);
            var a = new Thread(() => { go.SignalAndWait(); t.SetMasked(0, false); });
            var b = new Thread(() => { go.SignalAndWait(); t.SetMasked(0, false); });
            a.Start();
            b.Start();
            a.Join();
            b.Join();
        }

        Assert.Equal(Rounds, sink.Vectors.Count);
    }

    [Fact]
    public void VectorControlRegister_DriverWritesMaskBit_MasksVector()
    {
        var d = new MsixTestDevice();
        var sink = new RecordingSink();
        d.Msix.Connect(sink);

        d.Bar0.Write(MsixTestDevice.TableOffset + 4, 4, MsixTable.VectorControlMask);
        d.Msix.Raise(1);

        Assert.True(d.Msix.IsMasked(1));
        Assert.Equal(1UL, d.Bar0.Read(MsixTestDevice.TableOffset + 4, 4));
        Assert.Empty(sink.Vectors);
    }

    [Fact]
    public void VectorControlRegister_DriverClearsMaskBit_ReplaysPendingOnce()
    {
        var d = new MsixTestDevice();
        var sink = new RecordingSink();
        d.Msix.Connect(sink);
        d.Bar0.Write(MsixTestDevice.TableOffset + 8, 4, MsixTable.VectorControlMask);
        d.Msix.Raise(2);
        d.Msix.Raise(2);

        d.Bar0.Write(MsixTestDevice.TableOffset + 8, 4, 0);

        Assert.Equal([2], sink.Vectors);
    }

    [Fact]
    public void PbaRegister_PendingVectorsInSecondWord_ShowsTheirBits()
    {
        var d = new MsixTestDevice(vectors: 70);
        d.Msix.SetMasked(65, true);
        d.Msix.SetMasked(3, true);
        d.Msix.Raise(65);
        d.Msix.Raise(3);

        Assert.Equal(1UL << 3, d.Bar0.Read(MsixTestDevice.PbaOffset, 8));
        Assert.Equal(1UL << 1, d.Bar0.Read(MsixTestDevice.PbaOffset + 8, 8));
        Assert.Equal(0UL, d.Bar0.Read(MsixTestDevice.PbaOffset + 12, 4));
    }

    [Fact]
    public void PbaRegister_DriverWrite_DoesNotClearPending()
    {
        var d = new MsixTestDevice();
        d.Msix.SetMasked(0, true);
        d.Msix.Raise(0);

        d.Bar0.Write(MsixTestDevice.PbaOffset, 8, ~0UL);

        Assert.True(d.Msix.IsPending(0));
    }

    [Fact]
    public void ControlRegister_Read_ReportsTableSizeMinusOne()
    {
        var d = new MsixTestDevice(vectors: 6);

        ulong ctrl = d.Bar0.Read(MsixTestDevice.ControlOffset, 4);

        Assert.Equal(5UL, (ctrl >> MsixTable.ControlTableSizeShift) & 0x7ff);
        Assert.Equal(0UL, ctrl & MsixTable.ControlFunctionMask);
    }

    [Fact]
    public void ControlRegister_DriverSetsThenClearsFunctionMask_ReplaysPending()
    {
        var d = new MsixTestDevice();
        var sink = new RecordingSink();
        d.Msix.Connect(sink);
        d.Bar0.Write(MsixTestDevice.ControlOffset, 4, MsixTable.ControlFunctionMask);
        d.Msix.Raise(0);
        bool maskedReadBack = (d.Bar0.Read(MsixTestDevice.ControlOffset, 4) & MsixTable.ControlFunctionMask) != 0;

        d.Bar0.Write(MsixTestDevice.ControlOffset, 4, 0);

        Assert.True(maskedReadBack);
        Assert.Equal([0], sink.Vectors);
    }

    [Fact]
    public void RegisterFileReset_MappedTable_ResetsTableState()
    {
        var d = new MsixTestDevice();
        d.Msix.SetMasked(0, true);
        d.Msix.Raise(0);

        d.Bar0.Reset();

        Assert.False(d.Msix.IsPending(0));
        Assert.False(d.Msix.IsMasked(0));
    }

    [Fact]
    public void MapRegisters_FourVectors_AppearInTheMarkdownMap()
    {
        var d = new MsixTestDevice();

        string md = d.Bar0.ToMarkdown();

        Assert.Contains("| MSIX_CTRL | 32 |", md, StringComparison.Ordinal);
        Assert.Contains("| MSIX_VEC3 | 32 |", md, StringComparison.Ordinal);
        Assert.Contains("| MSIX_PBA0 | 64 |", md, StringComparison.Ordinal);
        Assert.Equal(RegisterWidth.Bits64, d.Bar0.Get("MSIX_PBA0").Width);
    }
}
