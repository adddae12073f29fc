namespace HmmEmu.Rnic;

/// <summary>PORT_STATE.STATE, with the values of libibverbs' <c>ibv_port_state</c>.</summary>
public enum RnicPortState : byte
{
    /// <summary>No state change.</summary>
    Nop = 0,

    /// <summary>The link is down (no peer attached).</summary>
    Down = 1,

    /// <summary>The link is up but not configured.</summary>
    Init = 2,

    /// <summary>The link is configured but not yet active.</summary>
    Armed = 3,

    /// <summary>The link passes packets.</summary>
    Active = 4,
}
