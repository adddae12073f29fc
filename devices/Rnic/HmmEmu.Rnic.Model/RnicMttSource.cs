using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// The MTT as a page source for the translation cache: id = MR index, page = iova page. Entry <c>i</c> of the MR's
/// MTT (in host memory) maps the i-th page from the one holding the MR's iova. A valid entry becomes a readable leaf,
/// writable and atomic-capable when WRITABLE is set; an invalid entry (or one with reserved bits set) is not present.
/// </summary>
internal sealed class RnicMttSource(RnicModel model) : IPageSource
{
    public TranslationStatus Lookup(ushort asid, ulong vpn, out DevicePte page)
    {
        page = DevicePte.Invalid;
        var mr = model.FindMrByIndex(asid);
        if (mr is null || !mr.IsLive)
            return TranslationStatus.OutOfRange;
        ulong index = vpn - (mr.Iova >> RnicMttEntry.PageShift);
        if (index >= mr.MttEntries)
            return TranslationStatus.OutOfRange;
        model.Scheduler.Charge(model.Options.MttReadNs);
        if (!model.Memory.TryReadUInt64(mr.MttAddress + (index * RnicMttEntry.Size), out ulong raw))
            return TranslationStatus.BadTable;
        var entry = new RnicMttEntry(raw);
        if (!entry.IsValid || !entry.ReservedIsZero)
            return TranslationStatus.NotPresent;
        ulong rights = DevicePte.ValidBit | DevicePte.LeafBit | DevicePte.ReadBit |
            (entry.IsWritable ? DevicePte.WriteBit | DevicePte.AtomicBit : 0);
        page = new DevicePte((entry.PageAddress & DevicePte.AddressMask) | rights);
        return TranslationStatus.Ok;
    }
}
