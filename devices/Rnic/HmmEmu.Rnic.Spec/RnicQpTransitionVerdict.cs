namespace HmmEmu.Rnic;

/// <summary>The outcome of checking a MODIFY_QP against <see cref="RnicQpStateMachine"/>.</summary>
public enum RnicQpTransitionVerdict
{
    /// <summary>The transition exists and the mask is acceptable.</summary>
    Ok = 0,

    /// <summary>There is no such transition (MODIFY_QP completes <see cref="RnicCommandStatus.BadTransition"/>).</summary>
    Illegal = 1,

    /// <summary>A required attribute is missing (MODIFY_QP completes <see cref="RnicCommandStatus.BadAttributes"/>).</summary>
    MissingAttributes = 2,

    /// <summary>The mask carries an attribute the transition does not take (MODIFY_QP completes <see cref="RnicCommandStatus.BadAttributes"/>).</summary>
    AttributesNotAllowed = 3,
}
