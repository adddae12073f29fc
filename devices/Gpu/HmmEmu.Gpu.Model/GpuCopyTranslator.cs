using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Gpu.Model;

/// <summary>
/// The copy engine's translation step (<see cref="GpuCopyAddress"/>): context 0 is physical (bit 63 set: a VRAM
/// offset, clear: a system bus address), contexts 1..15 go through the copy engine's own <see cref="DeviceMmu"/> with
/// that context's page table. Every descriptor runs inside one MMU use either way, so TLB invalidations wait for
/// copies of every context.
/// </summary>
internal sealed class GpuCopyTranslator(DeviceMmu mmu) : ITranslator
{
    /// <inheritdoc />
    public TranslationUse BeginUse() => mmu.BeginUse();

    /// <inheritdoc />
    public TranslationResult Translate(TranslationUse use, ushort asid, ulong address, Access access)
    {
        if (asid >= GpuRegisters.Contexts)
            return TranslationResult.Fail(TranslationStatus.OutOfRange);
        if (asid != 0)
            return mmu.Translate(use, asid, address, access);
        ulong offset = GpuCopyAddress.Offset(address);
        var aperture = GpuCopyAddress.IsVram(address) ? Aperture.Vram : Aperture.System;
        // Page by page, so that the engine's reset points see every page.
        return new TranslationResult(TranslationStatus.Ok, aperture, offset, DevicePageTable.PageSize - (offset & (DevicePageTable.PageSize - 1)));
    }

    /// <inheritdoc />
    public TranslationResult TranslateRun(TranslationUse use, ushort asid, ulong address, Access access, ulong maxLength) =>
        asid != 0 && asid < GpuRegisters.Contexts
            ? mmu.TranslateRun(use, asid, address, access, maxLength)
            : Translate(use, asid, address, access);

    /// <inheritdoc />
    public void EndUse(TranslationUse use) => mmu.EndUse(use);
}
