namespace HmmEmu.Rnic.Model;

/// <summary>
/// A registered memory region: its key, PD, iova range, rights and MTT. Immutable after REG_MR except for
/// <see cref="IsLive"/>, which DEREG_MR clears before it drains the MR's DMA.
/// </summary>
internal sealed class RnicMr(RnicKey key, RnicPd pd, ulong iova, ulong length, RnicAccessFlags access, ulong mttAddress,
    uint mttEntries)
{
    private int _live = 1;

    public RnicKey Key { get; } = key;

    public RnicPd Pd { get; } = pd;

    public ulong Iova { get; } = iova;

    public ulong Length { get; } = length;

    public RnicAccessFlags Access { get; } = access;

    public ulong MttAddress { get; } = mttAddress;

    public uint MttEntries { get; } = mttEntries;

    public bool OnDemand => (Access & RnicAccessFlags.OnDemand) != 0;

    /// <summary>The translation cache's address-space id: the MR index.</summary>
    public ushort CacheId => (ushort)Key.Index;

    /// <summary>False once DEREG_MR started: the key no longer resolves.</summary>
    public bool IsLive => Volatile.Read(ref _live) != 0;

    public void Kill() => Volatile.Write(ref _live, 0);

    /// <summary>Whether [<paramref name="address"/>, +<paramref name="length"/>) lies inside the region.</summary>
    public bool Covers(ulong address, ulong length) =>
        address >= Iova && length <= Length && address - Iova <= Length - length;
}
