using HmmEmu.Hardware.Memory;

namespace HmmEmu.Hardware.Translation;

/// <summary>
/// One translated device address: where its first byte lives (<see cref="Aperture"/> and
/// <see cref="Address"/>) and how many bytes from there share the translation: at least to the end of the page (an
/// MMU translates page by page), possibly much further (bus addresses without an IOMMU translate once for all).
/// </summary>
public readonly record struct TranslationResult(TranslationStatus Status, Aperture Aperture, ulong Address, ulong Length)
{
    /// <summary>Whether the address translated.</summary>
    public bool IsOk => Status == TranslationStatus.Ok;

    /// <summary>A failed translation.</summary>
    public static TranslationResult Fail(TranslationStatus status) => new(status, Aperture.System, 0, 0);
}
