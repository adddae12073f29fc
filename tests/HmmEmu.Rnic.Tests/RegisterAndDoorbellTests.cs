namespace HmmEmu.Rnic.Tests;

/// <summary>BAR0 vector routing, BAR2 doorbell encoding, and the IBA timer tables.</summary>
public sealed class RegisterAndDoorbellTests
{
    [Theory]
    [InlineData(RnicRegisters.IntCommandDone, RnicRegisters.VectorCommand)]
    [InlineData(RnicRegisters.IntResetDone, RnicRegisters.VectorCommand)]
    [InlineData(RnicRegisters.IntAsyncEvent, RnicRegisters.VectorAsync)]
    [InlineData(RnicRegisters.IntPageFault, RnicRegisters.VectorAsync)]
    [InlineData(RnicRegisters.IntCompletion, RnicRegisters.VectorCompletion)]
    [InlineData(RnicRegisters.IntError, RnicRegisters.VectorError)]
    public void VectorOf_RoutesEachCause(uint cause, int vector) => Assert.Equal(vector, RnicRegisters.VectorOf(cause));

    [Fact]
    public void Registers_DoNotOverlap()
    {
        (ulong Offset, int Bytes)[] regs =
        [
            (RnicRegisters.Id, 4), (RnicRegisters.Caps, 4), (RnicRegisters.OdpCaps, 4), (RnicRegisters.Contexts, 4),
            (RnicRegisters.MaxPd, 4), (RnicRegisters.MaxMr, 4), (RnicRegisters.MaxCq, 4), (RnicRegisters.MaxQp, 4),
            (RnicRegisters.MaxQpWr, 4), (RnicRegisters.MaxCqe, 4), (RnicRegisters.MaxRdAtomic, 4), (RnicRegisters.MaxMtt, 4),
            (RnicRegisters.PortState, 4), (RnicRegisters.PortAddress, 4), (RnicRegisters.Control, 4), (RnicRegisters.Status, 4),
            (RnicRegisters.IntStatus, 4), (RnicRegisters.IntMask, 4), (RnicRegisters.BusErrors, 4), (RnicRegisters.DoorbellErrors, 4),
            (RnicRegisters.ErrorCode, 4), (RnicRegisters.ErrorInfo, 8), (RnicRegisters.CmdqBase, 8), (RnicRegisters.CmdqRespBase, 8),
            (RnicRegisters.CmdqSize, 4), (RnicRegisters.CmdqTail, 4), (RnicRegisters.CmdqHead, 4), (RnicRegisters.CmdqStatus, 8),
            (RnicRegisters.EqBase, 8), (RnicRegisters.EqSize, 4), (RnicRegisters.EqGet, 4), (RnicRegisters.EqPut, 4),
            (RnicRegisters.EqOverflows, 4),
        ];
        var sorted = regs.OrderBy(r => r.Offset).ToArray();
        for (int i = 1; i < sorted.Length; i++)
            Assert.True(sorted[i - 1].Offset + (ulong)sorted[i - 1].Bytes <= sorted[i].Offset, $"register at 0x{sorted[i].Offset:X} overlaps");
        Assert.All(regs, r => Assert.Equal(0UL, r.Offset % (ulong)r.Bytes));
        Assert.True(sorted[^1].Offset < RnicRegisters.MsixControl);
    }

    [Fact]
    public void Doorbell_Encode_PutsObjectLowAndIndexHigh()
    {
        ulong v = RnicDoorbells.Encode(0x12_3456, 0x0000_1FFF);
        Assert.Equal(0x0000_1FFF_0012_3456UL, v);
        Assert.Equal(0x12_3456u, RnicDoorbells.ObjectOf(v));
        Assert.Equal(0x1FFFu, RnicDoorbells.IndexOf(v));
        Assert.True(RnicDoorbells.ReservedIsZero(v));
    }

    [Fact]
    public void Doorbell_EncodeArm_SetsSolicitedBit()
    {
        ulong v = RnicDoorbells.EncodeArm(5, 9, solicitedOnly: true);
        Assert.Equal((9UL << 32) | (1UL << 24) | 5, v);
        Assert.True(RnicDoorbells.IsSolicitedArm(v));
        Assert.False(RnicDoorbells.IsSolicitedArm(RnicDoorbells.EncodeArm(5, 9, solicitedOnly: false)));
        Assert.Equal(5u, RnicDoorbells.ObjectOf(v));
    }

    [Fact]
    public void Doorbell_ObjectOver24Bits_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => RnicDoorbells.Encode(0x100_0000, 0));

    [Fact]
    public void Doorbell_Offsets_AreFixedAndInsideOnePage()
    {
        Assert.Equal(0x000UL, RnicDoorbells.SqDoorbell);
        Assert.Equal(0x008UL, RnicDoorbells.RqDoorbell);
        Assert.Equal(0x010UL, RnicDoorbells.CqConsumerDoorbell);
        Assert.Equal(0x018UL, RnicDoorbells.CqArmDoorbell);
        Assert.Equal(0x3000UL, RnicDoorbells.PageOf(3));
        Assert.Equal(RnicDoorbells.PageSize * (ulong)RnicDoorbells.Contexts, RnicDoorbells.Bar2Size);
        Assert.Throws<ArgumentOutOfRangeException>(() => RnicDoorbells.PageOf(RnicDoorbells.Contexts));
    }

    [Theory]
    [InlineData(0, 655_360_000UL)]
    [InlineData(1, 10_000UL)]
    [InlineData(14, 1_280_000UL)]
    [InlineData(31, 491_520_000UL)]
    public void RnrTimerNs_FollowsIbaTable(byte code, ulong ns) => Assert.Equal(ns, RnicTimers.RnrTimerNs(code));

    [Fact]
    public void TimeoutNs_Is4096NsTimesPowerOfTwo()
    {
        Assert.Equal(0UL, RnicTimers.TimeoutNs(0));
        Assert.Equal(8192UL, RnicTimers.TimeoutNs(1));
        Assert.Equal(4096UL << 14, RnicTimers.TimeoutNs(14));
    }
}
