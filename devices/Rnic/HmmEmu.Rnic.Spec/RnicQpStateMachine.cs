using System.Text;

namespace HmmEmu.Rnic;

/// <summary>
/// The RC QP state machine as data: the legal MODIFY_QP transitions and their required and optional attributes, taken
/// from the RC column of the kernel's <c>qp_state_table</c> (<c>drivers/infiniband/core/verbs.c</c>) without the
/// alternate-path attributes. The model checks MODIFY_QP with it, the driver may pre-check with it, and
/// <c>docs/rnic.md</c> prints it (<see cref="ToMarkdown"/>).
/// </summary>
/// <remarks>
/// Besides MODIFY_QP, the device moves a QP on its own: to ERR on a completion error, a fatal WQE or a failed RESUME
/// (flushing every outstanding WQE with WrFlushErr), and from SQD to nothing else (SQD only stops new WQEs). RESET→ERR
/// is not a transition (as in verbs.c); a QP in RESET goes to INIT first.
/// </remarks>
public static class RnicQpStateMachine
{
    private const RnicQpAttrMask InitAttrs = RnicQpAttrMask.PkeyIndex | RnicQpAttrMask.Port | RnicQpAttrMask.AccessFlags;

    private const RnicQpAttrMask RtrRequired = RnicQpAttrMask.Av | RnicQpAttrMask.PathMtu | RnicQpAttrMask.DestQpn
        | RnicQpAttrMask.RqPsn | RnicQpAttrMask.MaxDestRdAtomic | RnicQpAttrMask.MinRnrTimer;

    private const RnicQpAttrMask RtsRequired = RnicQpAttrMask.SqPsn | RnicQpAttrMask.Timeout | RnicQpAttrMask.RetryCnt
        | RnicQpAttrMask.RnrRetry | RnicQpAttrMask.MaxQpRdAtomic;

    private const RnicQpAttrMask ToRtsOptional = RnicQpAttrMask.CurState | RnicQpAttrMask.AccessFlags | RnicQpAttrMask.MinRnrTimer;

    private const RnicQpAttrMask SqdToSqdOptional = RnicQpAttrMask.Port | RnicQpAttrMask.Av | RnicQpAttrMask.Timeout
        | RnicQpAttrMask.RetryCnt | RnicQpAttrMask.RnrRetry | RnicQpAttrMask.MaxQpRdAtomic | RnicQpAttrMask.MaxDestRdAtomic
        | RnicQpAttrMask.AccessFlags | RnicQpAttrMask.PkeyIndex | RnicQpAttrMask.MinRnrTimer;

    private static readonly RnicQpTransition[] s_transitions =
    [
        new(RnicQpState.Reset, RnicQpState.Reset, 0, 0),
        new(RnicQpState.Reset, RnicQpState.Init, InitAttrs, 0),
        new(RnicQpState.Init, RnicQpState.Reset, 0, 0),
        new(RnicQpState.Init, RnicQpState.Init, 0, InitAttrs),
        new(RnicQpState.Init, RnicQpState.Rtr, RtrRequired, RnicQpAttrMask.AccessFlags | RnicQpAttrMask.PkeyIndex),
        new(RnicQpState.Init, RnicQpState.Err, 0, 0),
        new(RnicQpState.Rtr, RnicQpState.Reset, 0, 0),
        new(RnicQpState.Rtr, RnicQpState.Rts, RtsRequired, ToRtsOptional),
        new(RnicQpState.Rtr, RnicQpState.Err, 0, 0),
        new(RnicQpState.Rts, RnicQpState.Reset, 0, 0),
        new(RnicQpState.Rts, RnicQpState.Rts, 0, ToRtsOptional),
        new(RnicQpState.Rts, RnicQpState.Sqd, 0, RnicQpAttrMask.EnSqdAsyncNotify),
        new(RnicQpState.Rts, RnicQpState.Err, 0, 0),
        new(RnicQpState.Sqd, RnicQpState.Reset, 0, 0),
        new(RnicQpState.Sqd, RnicQpState.Rts, 0, ToRtsOptional),
        new(RnicQpState.Sqd, RnicQpState.Sqd, 0, SqdToSqdOptional),
        new(RnicQpState.Sqd, RnicQpState.Err, 0, 0),
        new(RnicQpState.Sqe, RnicQpState.Reset, 0, 0),
        new(RnicQpState.Sqe, RnicQpState.Rts, 0, 0),
        new(RnicQpState.Sqe, RnicQpState.Err, 0, 0),
        new(RnicQpState.Err, RnicQpState.Reset, 0, 0),
        new(RnicQpState.Err, RnicQpState.Err, 0, 0),
    ];

    /// <summary>Every legal transition, in state order.</summary>
    public static IReadOnlyList<RnicQpTransition> Transitions => s_transitions;

    /// <summary>Every attribute bit the device defines.</summary>
    public const RnicQpAttrMask DefinedAttributes = RnicQpAttrMask.State | RnicQpAttrMask.CurState | RnicQpAttrMask.EnSqdAsyncNotify
        | RnicQpAttrMask.AccessFlags | RnicQpAttrMask.PkeyIndex | RnicQpAttrMask.Port | RnicQpAttrMask.Qkey | RnicQpAttrMask.Av
        | RnicQpAttrMask.PathMtu | RnicQpAttrMask.Timeout | RnicQpAttrMask.RetryCnt | RnicQpAttrMask.RnrRetry | RnicQpAttrMask.RqPsn
        | RnicQpAttrMask.MaxQpRdAtomic | RnicQpAttrMask.MinRnrTimer | RnicQpAttrMask.SqPsn | RnicQpAttrMask.MaxDestRdAtomic
        | RnicQpAttrMask.DestQpn;

    /// <summary>The row for <paramref name="from"/> → <paramref name="to"/>, if that transition exists.</summary>
    public static bool TryGet(RnicQpState from, RnicQpState to, out RnicQpTransition transition)
    {
        foreach (var t in s_transitions)
        {
            if (t.From == from && t.To == to)
            {
                transition = t;
                return true;
            }
        }
        transition = default;
        return false;
    }

    /// <summary>Checks a MODIFY_QP from <paramref name="from"/> to <paramref name="to"/> with <paramref name="mask"/>:
    /// <paramref name="missing"/> gets the required attributes the mask lacks, <paramref name="notAllowed"/> the ones it
    /// carries that the transition does not take (or that the device does not define).</summary>
    public static RnicQpTransitionVerdict Check(RnicQpState from, RnicQpState to, RnicQpAttrMask mask,
        out RnicQpAttrMask missing, out RnicQpAttrMask notAllowed)
    {
        missing = 0;
        notAllowed = 0;
        if (!TryGet(from, to, out var t))
            return RnicQpTransitionVerdict.Illegal;
        missing = t.Required & ~mask;
        notAllowed = mask & ~t.Allowed;
        if (missing != 0)
            return RnicQpTransitionVerdict.MissingAttributes;
        if (notAllowed != 0)
            return RnicQpTransitionVerdict.AttributesNotAllowed;
        return RnicQpTransitionVerdict.Ok;
    }

    /// <summary>Whether a MODIFY_QP from <paramref name="from"/> to <paramref name="to"/> with <paramref name="mask"/> is
    /// accepted; <paramref name="missing"/> gets the required attributes the mask lacks (none when the transition does not exist).</summary>
    public static bool TryTransition(RnicQpState from, RnicQpState to, RnicQpAttrMask mask, out RnicQpAttrMask missing) =>
        Check(from, to, mask, out missing, out _) == RnicQpTransitionVerdict.Ok;

    /// <summary>The target state of a MODIFY_QP: <paramref name="requested"/> when the mask has State, else <paramref name="current"/>.</summary>
    public static RnicQpState TargetOf(RnicQpState current, RnicQpAttrMask mask, RnicQpState requested) =>
        (mask & RnicQpAttrMask.State) != 0 ? requested : current;

    /// <summary>Whether the RQ doorbell is accepted in <paramref name="state"/> (INIT and later, ERR included, where the WQEs are flushed).</summary>
    public static bool AcceptsReceives(RnicQpState state) => state != RnicQpState.Reset;

    /// <summary>Whether the requester starts new send WQEs in <paramref name="state"/> (RTS only; posted WQEs wait in INIT and RTR).</summary>
    public static bool StartsSends(RnicQpState state) => state == RnicQpState.Rts;

    /// <summary>The state table as a markdown table (From, To, Required, Optional), as <c>docs/rnic.md</c> holds it.</summary>
    public static string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append("| From | To | Required attributes | Optional attributes |\n");
        sb.Append("| --- | --- | --- | --- |\n");
        foreach (var t in s_transitions)
            sb.Append($"| {Name(t.From)} | {Name(t.To)} | {MaskText(t.Required)} | {MaskText(t.Optional)} |\n");
        return sb.ToString();
    }

    /// <summary>The libibverbs-style name of <paramref name="state"/> (RESET, INIT, RTR, RTS, SQD, SQE, ERR).</summary>
    public static string Name(RnicQpState state) => state.ToString().ToUpperInvariant();

    private static string MaskText(RnicQpAttrMask mask)
    {
        if (mask == 0)
            return "—";
        var parts = new List<string>();
        for (int bit = 0; bit < 32; bit++)
        {
            var flag = (RnicQpAttrMask)(1u << bit);
            if ((mask & flag) != 0)
                parts.Add(flag.ToString());
        }
        return string.Join(", ", parts);
    }
}
