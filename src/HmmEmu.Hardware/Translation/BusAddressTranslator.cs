using HmmEmu.Hardware.Memory;

namespace HmmEmu.Hardware.Translation;

/// <summary>
/// The translator of a device without an IOMMU: bus addresses are physical addresses in one memory port,
/// with every permission granted. The address-space id is ignored.
/// </summary>
public sealed class BusAddressTranslator : ITranslator
{
    private readonly IMemoryPort _port;

    /// <summary>Creates a translator that maps bus addresses 1:1 onto <paramref name="port"/>.</summary>
    public BusAddressTranslator(IMemoryPort port)
    {
        ArgumentNullException.ThrowIfNull(port);
        _port = port;
    }

    /// <inheritdoc />
    public TranslationUse BeginUse() => TranslationUse.Untracked;

    /// <inheritdoc />
    public TranslationResult Translate(TranslationUse use, ushort asid, ulong address, Access access)
    {
        if (address >= _port.Size)
            return TranslationResult.Fail(TranslationStatus.OutOfRange);
        // The identity translation holds for every address after this one too: one translation covers the rest.
        return new TranslationResult(TranslationStatus.Ok, _port.Aperture, address, _port.Size - address);
    }

    /// <inheritdoc />
    public void EndUse(TranslationUse use)
    {
    }
}
