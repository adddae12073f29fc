namespace HmmEmu.Rnic.Tests;

/// <summary>The RC QP transition table: legal transitions with their required attributes, illegal ones refused.</summary>
public sealed class QpStateMachineTests
{
    private const RnicQpAttrMask ToInit = RnicQpAttrMask.State | RnicQpAttrMask.PkeyIndex | RnicQpAttrMask.Port | RnicQpAttrMask.AccessFlags;

    private const RnicQpAttrMask ToRtr = RnicQpAttrMask.State | RnicQpAttrMask.Av | RnicQpAttrMask.PathMtu | RnicQpAttrMask.DestQpn
        | RnicQpAttrMask.RqPsn | RnicQpAttrMask.MaxDestRdAtomic | RnicQpAttrMask.MinRnrTimer;

    private const RnicQpAttrMask ToRts = RnicQpAttrMask.State | RnicQpAttrMask.SqPsn | RnicQpAttrMask.Timeout | RnicQpAttrMask.RetryCnt
        | RnicQpAttrMask.RnrRetry | RnicQpAttrMask.MaxQpRdAtomic;

    [Fact]
    public void TryTransition_ResetInitRtrRts_WithRequiredAttributes_Succeeds()
    {
        Assert.True(RnicQpStateMachine.TryTransition(RnicQpState.Reset, RnicQpState.Init, ToInit, out var m1));
        Assert.Equal(RnicQpAttrMask.None, m1);
        Assert.True(RnicQpStateMachine.TryTransition(RnicQpState.Init, RnicQpState.Rtr, ToRtr, out _));
        Assert.True(RnicQpStateMachine.TryTransition(RnicQpState.Rtr, RnicQpState.Rts, ToRts, out _));
    }

    [Theory]
    [InlineData(RnicQpAttrMask.PkeyIndex)]
    [InlineData(RnicQpAttrMask.Port)]
    [InlineData(RnicQpAttrMask.AccessFlags)]
    public void TryTransition_ResetToInitMissingOne_ReportsIt(RnicQpAttrMask dropped)
    {
        Assert.False(RnicQpStateMachine.TryTransition(RnicQpState.Reset, RnicQpState.Init, ToInit & ~dropped, out var missing));
        Assert.Equal(dropped, missing);
    }

    [Theory]
    [InlineData(RnicQpAttrMask.Av)]
    [InlineData(RnicQpAttrMask.PathMtu)]
    [InlineData(RnicQpAttrMask.DestQpn)]
    [InlineData(RnicQpAttrMask.RqPsn)]
    [InlineData(RnicQpAttrMask.MaxDestRdAtomic)]
    [InlineData(RnicQpAttrMask.MinRnrTimer)]
    public void TryTransition_InitToRtrMissingOne_ReportsIt(RnicQpAttrMask dropped)
    {
        Assert.False(RnicQpStateMachine.TryTransition(RnicQpState.Init, RnicQpState.Rtr, ToRtr & ~dropped, out var missing));
        Assert.Equal(dropped, missing);
    }

    [Theory]
    [InlineData(RnicQpAttrMask.SqPsn)]
    [InlineData(RnicQpAttrMask.Timeout)]
    [InlineData(RnicQpAttrMask.RetryCnt)]
    [InlineData(RnicQpAttrMask.RnrRetry)]
    [InlineData(RnicQpAttrMask.MaxQpRdAtomic)]
    public void TryTransition_RtrToRtsMissingOne_ReportsIt(RnicQpAttrMask dropped)
    {
        Assert.False(RnicQpStateMachine.TryTransition(RnicQpState.Rtr, RnicQpState.Rts, ToRts & ~dropped, out var missing));
        Assert.Equal(dropped, missing);
    }

    [Fact]
    public void Check_RtrToRtsWithOptionalMinRnrTimer_IsOk() =>
        Assert.Equal(RnicQpTransitionVerdict.Ok,
            RnicQpStateMachine.Check(RnicQpState.Rtr, RnicQpState.Rts, ToRts | RnicQpAttrMask.MinRnrTimer, out _, out _));

    [Fact]
    public void Check_ExtraAttributeNotTaken_ReportsNotAllowed()
    {
        var verdict = RnicQpStateMachine.Check(RnicQpState.Reset, RnicQpState.Init, ToInit | RnicQpAttrMask.SqPsn, out var missing, out var notAllowed);
        Assert.Equal(RnicQpTransitionVerdict.AttributesNotAllowed, verdict);
        Assert.Equal(RnicQpAttrMask.None, missing);
        Assert.Equal(RnicQpAttrMask.SqPsn, notAllowed);
    }

    [Fact]
    public void Check_QkeyOnRc_IsNotAllowed() =>
        Assert.Equal(RnicQpTransitionVerdict.AttributesNotAllowed,
            RnicQpStateMachine.Check(RnicQpState.Reset, RnicQpState.Init, ToInit | RnicQpAttrMask.Qkey, out _, out _));

    [Fact]
    public void Check_CurStateFromInit_IsNotAllowed() =>
        Assert.Equal(RnicQpTransitionVerdict.AttributesNotAllowed,
            RnicQpStateMachine.Check(RnicQpState.Init, RnicQpState.Rtr, ToRtr | RnicQpAttrMask.CurState, out _, out _));

    [Theory]
    [InlineData(RnicQpState.Reset, RnicQpState.Rtr)]
    [InlineData(RnicQpState.Reset, RnicQpState.Rts)]
    [InlineData(RnicQpState.Reset, RnicQpState.Err)]
    [InlineData(RnicQpState.Init, RnicQpState.Rts)]
    [InlineData(RnicQpState.Rtr, RnicQpState.Init)]
    [InlineData(RnicQpState.Rts, RnicQpState.Rtr)]
    [InlineData(RnicQpState.Rts, RnicQpState.Sqe)]
    [InlineData(RnicQpState.Err, RnicQpState.Rts)]
    [InlineData(RnicQpState.Err, RnicQpState.Init)]
    public void TryTransition_Illegal_IsRefusedWithNothingMissing(RnicQpState from, RnicQpState to)
    {
        Assert.False(RnicQpStateMachine.TryTransition(from, to, RnicQpStateMachine.DefinedAttributes, out var missing));
        Assert.Equal(RnicQpAttrMask.None, missing);
        Assert.Equal(RnicQpTransitionVerdict.Illegal, RnicQpStateMachine.Check(from, to, 0, out _, out _));
    }

    [Theory]
    [InlineData(RnicQpState.Init)]
    [InlineData(RnicQpState.Rtr)]
    [InlineData(RnicQpState.Rts)]
    [InlineData(RnicQpState.Sqd)]
    [InlineData(RnicQpState.Sqe)]
    [InlineData(RnicQpState.Err)]
    public void TryTransition_AnyStartedStateToResetOrErr_NeedsOnlyState(RnicQpState from)
    {
        Assert.True(RnicQpStateMachine.TryTransition(from, RnicQpState.Reset, RnicQpAttrMask.State, out _));
        Assert.True(RnicQpStateMachine.TryTransition(from, RnicQpState.Err, RnicQpAttrMask.State, out _));
    }

    [Fact]
    public void Transitions_AreUniqueAndOptionalNeverOverlapsRequired()
    {
        var pairs = RnicQpStateMachine.Transitions.Select(t => (t.From, t.To)).ToList();
        Assert.Equal(pairs.Count, pairs.Distinct().Count());
        Assert.All(RnicQpStateMachine.Transitions, t => Assert.Equal(RnicQpAttrMask.None, t.Required & t.Optional));
        Assert.All(RnicQpStateMachine.Transitions, t => Assert.Equal(t.Allowed, t.Allowed & RnicQpStateMachine.DefinedAttributes));
    }

    [Fact]
    public void TargetOf_WithoutStateBit_StaysInCurrentState()
    {
        Assert.Equal(RnicQpState.Rts, RnicQpStateMachine.TargetOf(RnicQpState.Rts, RnicQpAttrMask.MinRnrTimer, RnicQpState.Err));
        Assert.Equal(RnicQpState.Err, RnicQpStateMachine.TargetOf(RnicQpState.Rts, RnicQpAttrMask.State, RnicQpState.Err));
    }

    [Fact]
    public void PostingRules_ReceivesFromInitSendsOnlyInRts()
    {
        Assert.False(RnicQpStateMachine.AcceptsReceives(RnicQpState.Reset));
        Assert.True(RnicQpStateMachine.AcceptsReceives(RnicQpState.Init));
        Assert.False(RnicQpStateMachine.StartsSends(RnicQpState.Rtr));
        Assert.True(RnicQpStateMachine.StartsSends(RnicQpState.Rts));
        Assert.False(RnicQpStateMachine.StartsSends(RnicQpState.Sqd));
    }
}
