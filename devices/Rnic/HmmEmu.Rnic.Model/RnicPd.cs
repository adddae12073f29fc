namespace HmmEmu.Rnic.Model;

/// <summary>A protection domain: the scope of MR keys. Counted references keep DEALLOC_PD from freeing one in use.</summary>
internal sealed class RnicPd(uint number, uint context)
{
    public uint Number { get; } = number;

    public uint Context { get; } = context;

    /// <summary>MRs and QPs that name this PD; under the model's object lock.</summary>
    public int References { get; set; }
}
