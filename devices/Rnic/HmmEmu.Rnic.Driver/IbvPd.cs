namespace HmmEmu.Rnic.Driver;

/// <summary>A protection domain (ibv_pd).</summary>
public sealed class IbvPd
{
    internal IbvPd(IbvContext context, uint number)
    {
        Context = context;
        Number = number;
    }

    /// <summary>The context that allocated it.</summary>
    public IbvContext Context { get; }

    /// <summary>The device's PD number.</summary>
    public uint Number { get; }

    internal bool IsDeallocated { get; set; }
}
