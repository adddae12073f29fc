namespace HmmEmu.Hardware.Translation;

/// <summary>
/// The translation step a DMA engine or compute engine goes through for each page span: device virtual
/// (or bus) address in, aperture and address out. Implementations never throw for bad addresses; they
/// answer with a failed <see cref="TranslationResult"/>.
/// </summary>
public interface ITranslator
{
    /// <summary>Starts a unit of work whose translations must stay covered until <see cref="EndUse"/>.</summary>
    TranslationUse BeginUse();

    /// <summary>Translates the page containing <paramref name="address"/> in address space <paramref name="asid"/> for <paramref name="access"/>.</summary>
    TranslationResult Translate(TranslationUse use, ushort asid, ulong address, Access access);

    /// <summary>Ends a unit of work: invalidations waiting on it may now complete.</summary>
    void EndUse(TranslationUse use);
}
