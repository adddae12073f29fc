using HmmEmu.Annotations;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Kernel.Vm;

public sealed partial class Mm
{
    /// <summary>
    /// mremap(2) for private anonymous memory: shrinks, grows in place, or moves the pages (present, device-private
    /// and device-exclusive entries alike) to a new range after an MMU_NOTIFY_UNMAP of the old one. EINVAL for an
    /// unaligned address, zero new length, bad flag combinations or an overlapping fixed target; EFAULT if the old
    /// range is not inside one VMA; ENOMEM if it cannot grow in place without MayMove, or no room is left. Nothing
    /// changes on error. May sleep.
    /// </summary>
    [MayInvalidate]
    public Errno Mremap(ulong oldAddr, ulong oldLength, ulong newLength, MremapFlags flags, ulong newAddr, out ulong result)
    {
        result = 0;
        Kernel.MightSleep("mremap");
        if ((oldAddr & ~PageMask) != 0 || ((int)flags & ~7) != 0)
            return Errno.EINVAL;
        if ((flags & (MremapFlags.Fixed | MremapFlags.DontUnmap)) != 0 && (flags & MremapFlags.MayMove) == 0)
            return Errno.EINVAL;
        ulong oldLen = PageAlign(oldLength), newLen = PageAlign(newLength);
        if (newLen == 0 || oldLen == 0)
            return Errno.EINVAL;
        if ((flags & MremapFlags.DontUnmap) != 0 && oldLen != newLen)
            return Errno.EINVAL;
        bool fixedTarget = (flags & MremapFlags.Fixed) != 0;
        if (fixedTarget && ((newAddr & ~PageMask) != 0 || newAddr > TaskSize - newLen
            || (newAddr < oldAddr + oldLen && oldAddr < newAddr + newLen)))
        {
            return Errno.EINVAL;
        }
        using (MmapWriteLock())
        {
            var vma = VmaLookup(oldAddr);
            if (vma is null || oldAddr + oldLen > vma.End || oldAddr + oldLen < oldAddr)
                return Errno.EFAULT;
            if (!vma.IsAnonymous || (vma.Flags & VmFlags.HugeTlb) != 0)
                return Errno.EINVAL;                    // file and hugetlb mappings are not supported here
            if (!fixedTarget && (flags & MremapFlags.DontUnmap) == 0)
            {
                if (newLen <= oldLen)
                {
                    if (newLen < oldLen)
                        UnmapLocked(oldAddr + newLen, oldAddr + oldLen);
                    result = oldAddr;
                    return Errno.Ok;
                }
                if (oldAddr + oldLen == vma.End && IsFree(vma.End, oldAddr + newLen) && oldAddr + newLen <= TaskSize)
                {
                    vma.End = oldAddr + newLen;             // grow in place
                    result = oldAddr;
                    return Errno.Ok;
                }
                if ((flags & MremapFlags.MayMove) == 0)
                    return Errno.ENOMEM;
            }
            ulong target = newAddr;
            if (fixedTarget)
                UnmapLocked(newAddr, newAddr + newLen);
            else if (!TryGetUnmappedArea(0, newLen, out target))
                return Errno.ENOMEM;
            MoveRange(vma, oldAddr, target, Math.Min(oldLen, newLen), newLen);
            if ((flags & MremapFlags.DontUnmap) == 0)
                UnmapLocked(oldAddr, oldAddr + oldLen);
            result = target;
            return Errno.Ok;
        }
    }

    // move_vma + move_page_tables: a new VMA at target, and every entry of [from, from+moved) moved across.
    private void MoveRange(Vma vma, ulong from, ulong target, ulong moved, ulong newLen)
    {
        var mem = Kernel.Memory;
        WaitOutMigrationEntries(from, from + moved);
        var moving = new Vma(this, target, target + newLen, vma.Flags, null, 0) { HasAnonPages = vma.HasAnonPages };
        InsertVma(moving);
        var range = InvalidateRangeStart(NotifierEvent.Unmap, from, from + moved);
        for (ulong off = 0; off < moved; off += PageSize)
        {
            ulong src = from + off, dst = target + off;
            using (PageTableLock.Scoped())
            {
                var st = PageTable.Find(src, out _);
                var pte = st?.Get(CpuPageTable.PteIndex(src)) ?? Pte.None;
                if (pte.IsNone)
                    continue;
                SetPte(st!, src, Pte.None);
                // A huge page is split when it moves (move_pages_tables may move a whole PMD when source and
                // target are both aligned; this model always splits, which every caller observes the same way).
                SetPte(PageTable.Ensure(dst), dst, pte.IsHuge ? pte.WithoutHuge() : pte);
                if (!pte.IsSpecial && (pte.IsPresent || pte.IsDevicePrivate || pte.IsDeviceExclusive))
                    mem.SetOwner(pte.Pfn, this, dst >> PhysicalMemory.PageShift);
            }
        }
        InvalidateRangeEnd(range);
    }
}
