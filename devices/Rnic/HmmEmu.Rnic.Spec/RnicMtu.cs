namespace HmmEmu.Rnic;

/// <summary>Path MTU codes, with the values of libibverbs' <c>ibv_mtu</c> (payload bytes = 128 &lt;&lt; code).</summary>
public enum RnicMtu : byte
{
    /// <summary>256 bytes.</summary>
    Mtu256 = 1,

    /// <summary>512 bytes.</summary>
    Mtu512 = 2,

    /// <summary>1024 bytes.</summary>
    Mtu1024 = 3,

    /// <summary>2048 bytes.</summary>
    Mtu2048 = 4,

    /// <summary>4096 bytes.</summary>
    Mtu4096 = 5,
}
