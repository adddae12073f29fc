namespace HmmEmu.Rnic;

/// <summary>Work-completion flags (byte 0x1A of an <see cref="RnicCqe"/>), with the bit values of libibverbs' <c>ibv_wc_flags</c>.</summary>
[Flags]
public enum RnicWcFlags : byte
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>The immediate field is valid.</summary>
    WithImm = 1 << 1,

    /// <summary>The completed message carried the solicited bit (this device's addition, bit 7).</summary>
    Solicited = 1 << 7,
}
