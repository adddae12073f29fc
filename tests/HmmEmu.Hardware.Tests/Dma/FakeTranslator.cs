using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Hardware.Tests.Dma;

/// <summary>
/// A test translator over a page map: device page → (aperture, physical page, permissions). Unmapped pages are
/// NotPresent, missing permissions are Permission. It tracks uses so tests can check the engine's use discipline.
/// Used only from the engine's worker thread.
/// </summary>
internal sealed class FakeTranslator : ITranslator
{
    private const ulong Page = 4096;

    private readonly Dictionary<ulong, (Aperture Aperture, ulong Physical, Access Allowed)> _pages = [];
    private int _nextSlot;

    public int Begun { get; private set; }

    public int Ended { get; private set; }

    public int ActiveSlot { get; private set; }

    public int Translations { get; private set; }

    public int TranslationsOutsideUse { get; private set; }

    /// <summary>Called at EndUse, before the use is released.</summary>
    public Action? OnEndUse { get; set; }

    public void Map(ulong deviceAddress, Aperture aperture, ulong physical, int pages, Access allowed = Access.Read | Access.Write)
    {
        for (ulong i = 0; i < (ulong)pages; i++)
            _pages[(deviceAddress / Page) + i] = (aperture, physical + (i * Page), allowed);
    }

    public TranslationUse BeginUse()
    {
        if (ActiveSlot != 0)
            throw new InvalidOperationException("BeginUse while another use is active.");
        Begun++;
        ActiveSlot = ++_nextSlot;
        return new TranslationUse(ActiveSlot);
    }

    public TranslationResult Translate(TranslationUse use, ushort asid, ulong address, Access access)
    {
        Translations++;
        if (use.Slot == 0 || use.Slot != ActiveSlot)
            TranslationsOutsideUse++;
        if (!_pages.TryGetValue(address / Page, out var p))
            return TranslationResult.Fail(TranslationStatus.NotPresent);
        if ((p.Allowed & access) != access)
            return TranslationResult.Fail(TranslationStatus.Permission);
        ulong offset = address % Page;
        return new TranslationResult(TranslationStatus.Ok, p.Aperture, p.Physical + offset, Page - offset);
    }

    public void EndUse(TranslationUse use)
    {
        if (use.Slot != ActiveSlot)
            throw new InvalidOperationException($"EndUse of slot {use.Slot} but slot {ActiveSlot} is active.");
        OnEndUse?.Invoke();
        Ended++;
        ActiveSlot = 0;
    }
}
