namespace HmmEmu.Rnic;

/// <summary>One row of the RC QP state table: a legal MODIFY_QP from <paramref name="From"/> to <paramref name="To"/>
/// and the attributes it must and may carry (besides State, which is always allowed).</summary>
/// <param name="From">The QP's current state.</param>
/// <param name="To">The target state.</param>
/// <param name="Required">Attributes the mask must carry.</param>
/// <param name="Optional">Attributes the mask may also carry.</param>
public readonly record struct RnicQpTransition(RnicQpState From, RnicQpState To, RnicQpAttrMask Required, RnicQpAttrMask Optional)
{
    /// <summary>Every attribute the mask may carry for this transition (Required, Optional and State).</summary>
    public RnicQpAttrMask Allowed => Required | Optional | RnicQpAttrMask.State;
}
