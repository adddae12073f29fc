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

    /// <summary>
    /// Translates like <see cref="Translate"/>, and may go on over the following pages while their translations are
    /// already at hand, held by <paramref name="use"/> and physically next in the same aperture: the result's
    /// <see cref="TranslationResult.Length"/> then spans all of them. It stops once it covers
    /// <paramref name="maxLength"/> bytes. A translator that answers page by page need not implement it.
    /// </summary>
    TranslationResult TranslateRun(TranslationUse use, ushort asid, ulong address, Access access, ulong maxLength) =>
        Translate(use, asid, address, access);

    /// <summary>Ends a unit of work: invalidations waiting on it may now complete.</summary>
    void EndUse(TranslationUse use);
}
