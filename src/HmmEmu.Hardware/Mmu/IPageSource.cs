using HmmEmu.Hardware.Translation;

namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// Where a <see cref="CachedPageTranslator"/> finds a translation on a cache miss: a device's own table format (an RDMA
/// NIC's MTT, a flat IOMMU table) presented as 4 KiB leaves in the <see cref="DevicePte"/> format.
/// </summary>
public interface IPageSource
{
    /// <summary>
    /// Looks up page <paramref name="vpn"/> (address / 4 KiB) of address space <paramref name="asid"/>. Returns
    /// <see cref="TranslationStatus.Ok"/> with a valid leaf (its rights are checked by the caller),
    /// <see cref="TranslationStatus.NotPresent"/> when the entry exists but is not valid (a fault for an on-demand
    /// table), or <see cref="TranslationStatus.OutOfRange"/> / <see cref="TranslationStatus.BadTable"/> when there is
    /// no usable entry. Called on misses only; may charge virtual time and yield; never throws for table contents.
    /// </summary>
    TranslationStatus Lookup(ushort asid, ulong vpn, out DevicePte page);
}
