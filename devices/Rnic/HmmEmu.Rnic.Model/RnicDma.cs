using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Rnic.Model;

/// <summary>How a DMA through an MR ended.</summary>
internal enum DmaResult
{
    Ok,

    /// <summary>An ODP MR's entry was invalid (or read-only for a write): a page fault for the driver.</summary>
    Fault,

    /// <summary>A key, PD, right or bound check failed, or a pinned MR's entry was unusable.</summary>
    ProtectionError,
}

/// <summary>Where an ODP access missed: the MR's key, the first iova that missed and the bytes to the end of the access.</summary>
internal readonly record struct DmaFault(uint Key, ulong Address, uint Length, RnicFaultAccess Access);

/// <summary>
/// The engines' DMA: copies between packet buffers and MRs, page span by page span, through the MTT translation
/// cache. Each call is one translation use, held while the bytes move and the transfer time is charged, so that an
/// INVALIDATE_MTT or DEREG_MR that overlaps it completes only after it ended. Never holds a lock.
/// </summary>
internal sealed class RnicDma(RnicModel model)
{
    /// <summary>Copies <paramref name="buffer"/> to (<paramref name="toMemory"/>) or from the MR at <paramref name="address"/>.</summary>
    /// <remarks>
    /// The translation cache and the MTT source know an MR only by its index, and DEREG_MR frees the index for the
    /// next REG_MR once the DMA that translated through it has drained. A caller may still hold the old
    /// <see cref="RnicMr"/> (a WRITE in progress resumed after a pause, a key looked up before the DEREG), so every
    /// translation is checked against <see cref="RnicMr.IsLive"/> after it is published (and before a miss can raise a
    /// fault for a dead key): DEREG_MR kills the MR before it invalidates, so either this use is awaited (the index
    /// cannot be reused under it) or it sees the MR dead.
    /// </remarks>
    public DmaResult Copy(RnicMr mr, ulong address, Span<byte> buffer, bool toMemory, ulong accessEnd, out DmaFault fault)
    {
        fault = default;
        var translation = model.Translation;
        var use = translation.BeginUse();
        try
        {
            int done = 0;
            var access = toMemory ? Access.Write : Access.Read;
            while (done < buffer.Length)
            {
                ulong va = address + (ulong)done;
                var result = translation.Translate(use, mr.CacheId, va, access);
                if (!mr.IsLive)
                    return DmaResult.ProtectionError;     // deregistered: the index may name another MR now
                if (!result.IsOk)
                    return Miss(mr, result.Status, va, accessEnd, toMemory ? RnicFaultAccess.Write : RnicFaultAccess.Read, out fault);
                int chunk = (int)Math.Min(result.Length, (ulong)(buffer.Length - done));
                if (!model.Memory.TryGetSpan(result.Address, chunk, toMemory, out var span))
                    return DmaResult.ProtectionError;
                chunk = Math.Min(chunk, span.Length);
                if (toMemory)
                    buffer.Slice(done, chunk).CopyTo(span);
                else
                    span[..chunk].CopyTo(buffer.Slice(done, chunk));
                done += chunk;
            }
            ChargeTransfer(buffer.Length);
            return DmaResult.Ok;
        }
        finally
        {
            translation.EndUse(use);
        }
    }

    /// <summary>
    /// Copies between <paramref name="buffer"/> and the local SGE list at byte <paramref name="offset"/> of the list.
    /// Every SGE's lkey must name a live MR of <paramref name="qp"/>'s PD that covers it (and grants LocalWrite when
    /// the device writes it).
    /// </summary>
    public DmaResult CopySges(RnicQp qp, ReadOnlySpan<RnicSge> sges, ulong offset, Span<byte> buffer, bool toMemory, out DmaFault fault)
    {
        fault = default;
        int done = 0;
        foreach (var sge in sges)
        {
            if (done == buffer.Length)
                break;
            if (offset >= sge.Length)
            {
                offset -= sge.Length;
                continue;
            }
            var mr = model.FindMr(sge.Lkey);
            if (mr is null || mr.Pd != qp.Pd || !mr.Covers(sge.Address, sge.Length) ||
                (toMemory && (mr.Access & RnicAccessFlags.LocalWrite) == 0))
            {
                return DmaResult.ProtectionError;
            }
            int chunk = (int)Math.Min(sge.Length - offset, (ulong)(buffer.Length - done));
            var result = Copy(mr, sge.Address + offset, buffer.Slice(done, chunk), toMemory, sge.Address + sge.Length, out fault);
            if (result != DmaResult.Ok)
                return result;
            done += chunk;
            offset = 0;
        }
        return done == buffer.Length ? DmaResult.Ok : DmaResult.ProtectionError;
    }

    /// <summary>
    /// Zero-copy gather for a segment: translates, under <paramref name="use"/> (which the caller keeps open until the
    /// segment is released), the bytes from <paramref name="offset"/> of the local SGE list for up to
    /// <paramref name="length"/> bytes, and appends the frames they live in to the extent lists (adjacent frames merge).
    /// Checks as <see cref="CopySges"/> does, for reading. Returns how many bytes it translated: fewer than asked when a
    /// page missed, a check failed or the extent lists filled up; the caller sends only whole packets of that and lets
    /// the per-packet path meet the failure and report it.
    /// </summary>
    public long Gather(TranslationUse use, RnicQp qp, ReadOnlySpan<RnicSge> sges, ulong offset, long length,
        ulong[] extentAddress, int[] extentLength, ref int extents)
    {
        long done = GatherSges(use, qp, sges, offset, length, extentAddress, extentLength, ref extents);
        done = Math.Min(done, ReadablePrefix(extentAddress, extentLength, ref extents));
        ChargeTransfer((int)Math.Min(done, int.MaxValue));
        return done;
    }

    // The DMA read's own check, made where a per-packet read would make it: how many bytes from the start of the
    // extents lie in readable RAM (a translation may name a frame that is not RAM). Cuts the extents there.
    private long ReadablePrefix(ulong[] extentAddress, int[] extentLength, ref int extents)
    {
        long readable = 0;
        for (int e = 0; e < extents; e++)
        {
            ulong address = extentAddress[e];
            long left = extentLength[e];
            while (left > 0)
            {
                if (!model.Memory.TryGetSpan(address, (int)left, write: false, out var span))
                {
                    extentLength[e] = (int)(address - extentAddress[e]);
                    extents = extentLength[e] == 0 ? e : e + 1;
                    return readable;
                }
                address += (ulong)span.Length;
                left -= span.Length;
                readable += span.Length;
            }
        }
        return readable;
    }

    private long GatherSges(TranslationUse use, RnicQp qp, ReadOnlySpan<RnicSge> sges, ulong offset, long length,
        ulong[] extentAddress, int[] extentLength, ref int extents)
    {
        var translation = model.Translation;
        long done = 0;
        foreach (var sge in sges)
        {
            if (done == length)
                break;
            if (offset >= sge.Length)
            {
                offset -= sge.Length;
                continue;
            }
            var mr = model.FindMr(sge.Lkey);
            if (mr is null || mr.Pd != qp.Pd || !mr.Covers(sge.Address, sge.Length))
                return done;
            long want = (long)Math.Min(sge.Length - offset, (ulong)(length - done));
            for (long got = 0; got < want;)
            {
                ulong va = sge.Address + offset + (ulong)got;
                var result = translation.Translate(use, mr.CacheId, va, Access.Read);
                if (!mr.IsLive || !result.IsOk)
                    return done + got;      // deregistered (see Copy), a miss or no right: the per-packet path reports it
                int chunk = (int)Math.Min(result.Length, (ulong)(want - got));
                int last = extents - 1;
                if (last >= 0 && extentAddress[last] + (ulong)extentLength[last] == result.Address &&
                    extentLength[last] <= int.MaxValue - chunk)
                {
                    extentLength[last] += chunk;
                }
                else if (extents < extentAddress.Length)
                {
                    extentAddress[extents] = result.Address;
                    extentLength[extents++] = chunk;
                }
                else
                {
                    return done + got;      // out of extents: send what is gathered
                }
                got += chunk;
            }
            done += want;
            offset = 0;
        }
        return done;
    }

    /// <summary>
    /// Places <paramref name="length"/> bytes of <paramref name="segment"/>'s payload, from its byte
    /// <paramref name="sourceOffset"/>, into the MR at <paramref name="address"/>: one translation use, each destination
    /// page span copied straight from the sender's frames. Results as <see cref="Copy"/>.
    /// </summary>
    public DmaResult CopyFromSegment(RnicMr mr, ulong address, RnicSegment segment, long sourceOffset, long length,
        ulong accessEnd, out DmaFault fault)
    {
        fault = default;
        var translation = model.Translation;
        var use = translation.BeginUse();
        try
        {
            // Pages whose frames follow each other are copied as one run, as a DMA engine bursts a contiguous range.
            long done = 0;
            ulong run = 0;
            long runBytes = 0;
            while (done + runBytes < length)
            {
                ulong va = address + (ulong)(done + runBytes);
                var result = translation.Translate(use, mr.CacheId, va, Access.Write);
                if (!mr.IsLive)
                    return DmaResult.ProtectionError;     // deregistered: see Copy
                if (!result.IsOk)
                {
                    // The bytes before the miss are placed, as page-by-page placement would have placed them.
                    return PlaceRun(segment, sourceOffset, ref done, run, runBytes)
                        ? Miss(mr, result.Status, va, accessEnd, RnicFaultAccess.Write, out fault)
                        : DmaResult.ProtectionError;
                }
                long chunk = (long)Math.Min(result.Length, (ulong)(length - done - runBytes));
                if (runBytes != 0 && result.Address == run + (ulong)runBytes)
                {
                    runBytes += chunk;
                    continue;
                }
                if (!PlaceRun(segment, sourceOffset, ref done, run, runBytes))
                    return DmaResult.ProtectionError;
                (run, runBytes) = (result.Address, chunk);
            }
            if (!PlaceRun(segment, sourceOffset, ref done, run, runBytes))
                return DmaResult.ProtectionError;
            ChargeTransfer((int)Math.Min(length, int.MaxValue));
            return DmaResult.Ok;
        }
        finally
        {
            translation.EndUse(use);
        }
    }

    // Copies `bytes` of the segment's payload (from sourceOffset + done) to the frames from `address` on, and advances
    // `done`. False if the frames cannot be written (bad or zero frame).
    private bool PlaceRun(RnicSegment segment, long sourceOffset, ref long done, ulong address, long bytes)
    {
        while (bytes > 0)
        {
            // A span stops at the end of a 2 MiB block of RAM: a run may need several.
            if (!model.Memory.TryGetSpan(address, (int)Math.Min(bytes, int.MaxValue), write: true, out var span))
                return false;
            if (!segment.CopyTo(sourceOffset + done, span))
                return false;
            done += span.Length;
            address += (ulong)span.Length;
            bytes -= span.Length;
        }
        return true;
    }

    /// <summary>Runs a compare-and-swap (<paramref name="compareAndSwap"/>) or fetch-and-add on the 8 bytes at <paramref name="address"/>.</summary>
    public DmaResult Atomic(RnicMr mr, ulong address, bool compareAndSwap, ulong compare, ulong swapOrAdd, out ulong original,
        out DmaFault fault)
    {
        original = 0;
        fault = default;
        var translation = model.Translation;
        var use = translation.BeginUse();
        try
        {
            var result = translation.Translate(use, mr.CacheId, address, Access.Atomic);
            if (!mr.IsLive)
                return DmaResult.ProtectionError;         // deregistered: see Copy
            if (!result.IsOk)
                return Miss(mr, result.Status, address, address + 8, RnicFaultAccess.Atomic, out fault);
            if (!model.Memory.TryGetSpan(result.Address, 8, write: true, out var span) || span.Length < 8 || (result.Address & 7) != 0)
                return DmaResult.ProtectionError;
            ref ulong target = ref Unsafe.As<byte, ulong>(ref MemoryMarshal.GetReference(span));
            original = compareAndSwap
                ? Interlocked.CompareExchange(ref target, swapOrAdd, compare)
                : Interlocked.Add(ref target, swapOrAdd) - swapOrAdd;
            ChargeTransfer(16);
            return DmaResult.Ok;
        }
        finally
        {
            translation.EndUse(use);
        }
    }

    private void ChargeTransfer(int bytes) =>
        model.Scheduler.Charge(((ulong)bytes + model.Options.DmaBytesPerNs - 1) / model.Options.DmaBytesPerNs);

    private static DmaResult Miss(RnicMr mr, TranslationStatus status, ulong va, ulong accessEnd, RnicFaultAccess access,
        out DmaFault fault)
    {
        fault = new DmaFault(mr.Key.Value, va, (uint)Math.Min(accessEnd - va, uint.MaxValue), access);
        return mr.OnDemand && status is TranslationStatus.NotPresent or TranslationStatus.Permission
            ? DmaResult.Fault
            : DmaResult.ProtectionError;
    }
}
