namespace HmmEmu.Rnic;

/// <summary>Packet flags (byte 0x01 of an <see cref="RnicPacketHeader"/>), the BTH bits the simulated link uses.</summary>
[Flags]
public enum RnicPacketFlags : byte
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>BTH.A: the responder must acknowledge this PSN (set on the last packet of a request, and periodically).</summary>
    AckRequest = 1 << 0,

    /// <summary>BTH.SE: solicited event, copied from the WQE's Solicited flag onto the last packet.</summary>
    Solicited = 1 << 1,
}
