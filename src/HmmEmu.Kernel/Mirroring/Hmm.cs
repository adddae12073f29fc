using HmmEmu.Annotations;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Mirroring;

/// <summary>hmm_range_fault: snapshot, and optionally fault in, the CPU page table for a device.</summary>
public static class Hmm
{
    private const int PageShift = PhysicalMemory.PageShift;
    private const ulong PageSize = PhysicalMemory.PageSize;
    private const uint NeedFault = 1;
    private const uint NeedWriteFault = 2;

    /// <summary>
    /// hmm_range_fault: fills <see cref="HmmRange.HmmPfns"/> with the CPU mapping of every page in the range,
    /// faulting in pages whose request bits ask for it. Per entry: a present page gives pfn|VALID (|WRITE if the CPU
    /// may write); the zero page pfn|VALID; a hole or PROT_NONE/I/O VMA gives ERROR; a not-present page gives 0.
    /// Returns EBUSY if the notifier's sequence moved (start again from ReadBegin), EFAULT for a requested fault on
    /// no VMA, an unreadable VMA or a failed fault, EPERM for a requested write on a read-only VMA, EINVAL for an
    /// empty or unaligned range. Caller holds the mmap lock (read is enough). May sleep.
    /// </summary>
    [MayInvalidate]
    public static Errno RangeFault(HmmRange range)
    {
        ArgumentNullException.ThrowIfNull(range);
        var notifier = range.Notifier ?? throw new ArgumentException("HmmRange.Notifier is null: hmm_range_fault needs the interval notifier that covers the range.", nameof(range));
        var mm = notifier.Mm ?? throw new InvalidOperationException("hmm_range_fault on a range whose notifier was never inserted. Insert the notifier first.");
        mm.MmapLock.AssertHeld("hmm_range_fault");
        if (range.Start >= range.End || ((range.Start | range.End) & (PageSize - 1)) != 0)
            return Errno.EINVAL;
        int pages = range.PageCount;
        if (range.HmmPfns is null || range.HmmPfns.Length < pages)
            throw new ArgumentException($"HmmRange.HmmPfns holds {range.HmmPfns?.Length ?? 0} entries but [0x{range.Start:x}, 0x{range.End:x}) has {pages} pages. Size the array to the range.", nameof(range));
        if (range.Start < notifier.Start || range.End - 1 > notifier.Last)
            throw new ArgumentException($"hmm_range_fault over [0x{range.Start:x}, 0x{range.End:x}) reaches outside its notifier's interval [0x{notifier.Start:x}, 0x{notifier.Last:x}]: invalidations there would not reach the driver. Use a notifier that covers the range.", nameof(range));

        var kernel = mm.Kernel;
        kernel.MightSleep("hmm_range_fault");
        if (((range.DefaultFlags | range.PfnFlagsMask) & HmmPfn.ReqFault) != 0)
            kernel.MightAlloc(Gfp.HighUser);   // a fault may allocate, reclaim and invalidate

        var walk = new Walk(range, mm);
        Errno ret;
        do
        {
            if (notifier.CheckRetry(range.NotifierSeq))
                return Errno.EBUSY;
            ret = walk.Run();
        }
        while (ret == Errno.EBUSY);
        return ret;
    }

    private sealed class Walk(HmmRange range, Mm mm)
    {
        private ulong _last = range.Start;
        private Vma? _vma;

        public Errno Run()
        {
            ulong addr = _last, end = range.End;
            while (addr < end)
            {
                var vma = mm.FindVma(addr);
                if (vma is null || addr < vma.Start)
                {
                    ulong holeEnd = vma is null ? end : Math.Min(end, vma.Start);
                    _vma = null;
                    var r = Hole(addr, holeEnd);
                    if (r != Errno.Ok)
                        return r;
                    addr = holeEnd;
                    continue;
                }
                ulong next = Math.Min(end, vma.End);
                _vma = vma;
                if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0 || (vma.Flags & VmFlags.Read) == 0)
                {
                    // hmm_vma_walk_test: not mirrorable.
                    if (RangeNeedFault(addr, next, 0) != 0)
                        return Errno.EFAULT;
                    Fill(addr, next, HmmPfn.Error);
                }
                else
                {
                    var r = WalkVma(addr, next);
                    if (r != Errno.Ok)
                        return r;
                }
                addr = next;
            }
            return Errno.Ok;
        }

        private Errno WalkVma(ulong addr, ulong end)
        {
            var kernel = mm.Kernel;
            while (addr < end)
            {
                var table = mm.PageTable.Find(addr, out ulong tableEnd);
                ulong chunkEnd = Math.Min(end, tableEnd);
                if (table is null)
                {
                    var r = Hole(addr, chunkEnd);
                    if (r != Errno.Ok)
                        return r;
                }
                else
                {
                    for (ulong a = addr; a < chunkEnd; a += PageSize)
                    {
                        var r = HandlePte(table, a, chunkEnd);
                        if (r != Errno.Ok)
                            return r;
                    }
                    kernel.Scheduler.Charge(kernel.Timing.PteVisitNs * ((chunkEnd - addr) >> PageShift));
                }
                addr = chunkEnd;
            }
            return Errno.Ok;
        }

        private Errno HandlePte(PteTable table, ulong addr, ulong end)
        {
            ref ulong entry = ref range.HmmPfns[(addr - range.Start) >> PageShift];
            var pte = table.Get(CpuPageTable.PteIndex(addr));
            ulong output;
            if (pte.IsNone)
            {
                uint required = PteNeedFault(entry, 0);
                if (required != 0)
                    return VmaFault(addr, end, required);
                output = 0;
            }
            else if (!pte.IsPresent)
            {
                if (pte.IsDevicePrivate && range.DevPrivateOwner is not null
                    && ReferenceEquals(DevicePagemap.Of(mm.Kernel, pte.Pfn)?.Owner, range.DevPrivateOwner))
                {
                    // The caller's own device memory: report it, never fault it back.
                    output = pte.Pfn | HmmPfn.Valid | (pte.IsWritableEntry ? HmmPfn.Write : 0);
                    if (pte.IsHuge)
                        output |= 9UL << HmmPfn.OrderShift;   // a device-private THP's PMD entry
                }
                else
                {
                    uint required = PteNeedFault(entry, 0);
                    if (required == 0)
                    {
                        output = 0;
                    }
                    else if (pte.IsDevicePrivate || pte.IsDeviceExclusive)
                    {
                        return VmaFault(addr, end, required);   // the fault migrates it to RAM, or restores it
                    }
                    else if (pte.IsMigration)
                    {
                        _last = addr;
                        mm.WaitMigrationEntry(addr, pte);
                        return Errno.EBUSY;
                    }
                    else
                    {
                        return Errno.EFAULT;
                    }
                }
            }
            else
            {
                // KernelMutant.RangeFaultIgnoresReadOnly (bug 9, HMM side): a read-only entry is reported writable.
                bool writable = pte.IsWritable || ((mm.Kernel.Options.Mutants & KernelMutant.RangeFaultIgnoresReadOnly) != 0 && !pte.IsZeroPage);
                ulong cpu = pte.IsProtNone ? 0 : writable ? HmmPfn.Valid | HmmPfn.Write : HmmPfn.Valid;
                if (pte.IsHuge && cpu != 0)
                    cpu |= 9UL << HmmPfn.OrderShift;   // mapped by a 2 MiB (PMD) entry, as hmm_vma_handle_pmd reports
                uint required = PteNeedFault(entry, cpu);
                if (required != 0)
                    return VmaFault(addr, end, required);
                if (pte.IsSpecial && !pte.IsZeroPage)
                {
                    if (PteNeedFault(entry, 0) != 0)
                        return Errno.EFAULT;
                    output = HmmPfn.Error;
                }
                else
                {
                    output = pte.Pfn | cpu;
                }
            }
            entry = (entry & HmmPfn.InOutFlags) | output;
            return Errno.Ok;
        }

        private Errno Hole(ulong addr, ulong end)
        {
            uint required = RangeNeedFault(addr, end, 0);
            if (_vma is null)
            {
                if (required != 0)
                    return Errno.EFAULT;
                Fill(addr, end, HmmPfn.Error);
                return Errno.Ok;
            }
            if (required != 0)
                return VmaFault(addr, end, required);
            Fill(addr, end, 0);
            return Errno.Ok;
        }

        // hmm_vma_fault: faults every page from addr to the end of the chunk, then asks for a re-walk (EBUSY).
        private Errno VmaFault(ulong addr, ulong end, uint required)
        {
            var vma = _vma!;
            _last = addr;
            var flags = FaultFlags.Remote;
            if ((required & NeedWriteFault) != 0)
            {
                if ((vma.Flags & VmFlags.Write) == 0)
                    return Errno.EPERM;
                flags |= FaultFlags.Write;
            }
            for (; addr < end; addr += PageSize)
            {
                if (mm.HandleMmFault(vma, addr, flags) != VmFaultResult.Ok)
                    return Errno.EFAULT;
            }
            return Errno.EBUSY;
        }

        private uint PteNeedFault(ulong request, ulong cpuFlags)
        {
            request &= range.PfnFlagsMask;
            request |= range.DefaultFlags;
            if ((request & HmmPfn.ReqFault) == 0)
                return 0;
            if ((request & HmmPfn.ReqWrite) != 0 && (cpuFlags & HmmPfn.Write) == 0)
                return NeedFault | NeedWriteFault;
            return (cpuFlags & HmmPfn.Valid) == 0 ? NeedFault : 0;
        }

        private uint RangeNeedFault(ulong addr, ulong end, ulong cpuFlags)
        {
            if (((range.DefaultFlags | range.PfnFlagsMask) & HmmPfn.ReqFault) == 0)
                return 0;
            uint r = 0;
            var pfns = range.HmmPfns;
            for (ulong i = (addr - range.Start) >> PageShift, n = (end - range.Start) >> PageShift; i < n; i++)
            {
                r |= PteNeedFault(pfns[i], cpuFlags);
                if (r == (NeedFault | NeedWriteFault))
                    break;
            }
            return r;
        }

        private void Fill(ulong addr, ulong end, ulong value)
        {
            var pfns = range.HmmPfns;
            for (ulong i = (addr - range.Start) >> PageShift, n = (end - range.Start) >> PageShift; i < n; i++)
                pfns[i] = (pfns[i] & HmmPfn.InOutFlags) | value;
        }
    }
}
