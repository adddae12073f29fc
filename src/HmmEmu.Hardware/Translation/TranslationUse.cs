namespace HmmEmu.Hardware.Translation;

/// <summary>
/// A handle for one unit of in-flight device work (a DMA transfer, a kernel's page span) that translates
/// addresses. An invalidation that covers a translation made under a use completes only after that use
/// ends: this is how a device acknowledges an invalidation only once no access through a stale entry can
/// still happen (the ATS invalidation-completion rule).
/// </summary>
/// <param name="Slot">The translator's slot for the use; 0 means "untracked".</param>
public readonly record struct TranslationUse(int Slot)
{
    /// <summary>A use that the translator does not track (translators without invalidation).</summary>
    public static TranslationUse Untracked => default;
}
