using HmmEmu.Hardware.Dma;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using static HmmEmu.Gpu.GpuRegisters;

namespace HmmEmu.Gpu.Driver;

/// <summary>
/// The driver's side of the copy engine: a submission and a completion ring in coherent memory, and a synchronous
/// batch API for migrations (<see cref="Run"/>). One batch runs at a time; the last descriptor of each ring-full asks
/// for the COPY_DONE interrupt, which wakes the waiter.
/// </summary>
/// <remarks>Lock: <c>_lock</c> (mutex) is taken inside the mmap lock by migrations and is a leaf otherwise.</remarks>
internal sealed class GpuCopyEngine
{
    /// <summary>Entries per ring.</summary>
    public const int Entries = 256;

    private const uint IndexMask = (2 * Entries) - 1;

    private readonly GpuDevice _device;
    private readonly KMutex _lock;
    private DmaCoherentBuffer _sq = null!;
    private DmaCoherentBuffer _cq = null!;
    private uint _sqTail;   // under _lock
    private uint _cqHead;   // under _lock
    private ulong _cookie;  // under _lock
    private long _bytes;
    private long _descriptors;

    public GpuCopyEngine(GpuDevice device)
    {
        _device = device;
        _lock = new KMutex(device.Kernel, "gpu.copy");
    }

    /// <summary>Bytes moved so far.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Allocates the rings. May sleep.</summary>
    public Errno Allocate(PciDev dev)
    {
        var err = dev.AllocCoherent(Entries * DmaDescriptor.Size, out var sq, Gfp.Kernel | Gfp.Zero);
        if (err != Errno.Ok)
            return err;
        _sq = sq!;
        err = dev.AllocCoherent(Entries * DmaCompletion.Size, out var cq, Gfp.Kernel | Gfp.Zero);
        if (err != Errno.Ok)
            return err;
        _cq = cq!;
        return Errno.Ok;
    }

    /// <summary>Programs the rings (latched on enable); both indices restart at 0. May sleep.</summary>
    public void Program(PciBar bar)
    {
        using (_lock.Scoped())
        {
            _sqTail = 0;
            _cqHead = 0;
            _sq.Span.Clear();
            _cq.Span.Clear();
            bar.Write64(CeSqBase, _sq.BusAddress);
            bar.Write32(CeSqSize, Entries);
            bar.Write64(CeCqBase, _cq.BusAddress);
            bar.Write32(CeCqSize, Entries);
        }
    }

    /// <summary>
    /// Copies each (source, destination) pair of one page (<see cref="GpuCopyAddress"/> addresses, context 0), or
    /// fills the destination with zeros when the source is <see cref="ZeroSource"/>, and waits for all of them.
    /// Returns EIO if the engine reported an error or the device was reset meanwhile. May sleep.
    /// </summary>
    public Errno Run(IReadOnlyList<(ulong Source, ulong Destination)> pages)
    {
        if (pages.Count == 0)
            return Errno.Ok;
        _device.Kernel.MightSleep("GpuCopyEngine.Run");
        var runs = Coalesce(pages);
        var bar = _device.Bar;
        using (_lock.Scoped())
        {
            int generation = _device.ResetGeneration;
            for (int first = 0; first < runs.Count; first += Entries)
            {
                int n = Math.Min(Entries, runs.Count - first);
                long bytes = 0;
                for (int i = 0; i < n; i++)
                {
                    var (src, dst, length) = runs[first + i];
                    var flags = i == n - 1 ? DmaFlags.InterruptOnCompletion : DmaFlags.None;
                    ulong cookie = ++_cookie;
                    var d = src == ZeroSource
                        ? DmaDescriptor.FillBytes(dst, 0, length, cookie, flags)
                        : DmaDescriptor.Copy(src, dst, length, cookie, flags);
                    d.Write(_sq.Span.Slice((int)(_sqTail & (Entries - 1)) * DmaDescriptor.Size, DmaDescriptor.Size));
                    _sqTail = (_sqTail + 1) & IndexMask;
                    bytes += length;
                }
                bar.Write32(CeSqTail, _sqTail);
                uint target = (_cqHead + (uint)n) & IndexMask;
                _device.WaitEvent((Engine: this, Target: target, Generation: generation),
                    static s => s.Engine.ReachedOrStopped(s.Target, s.Generation));
                if (_device.ResetGeneration != generation || _device.IsQuiesced || bar.Read32(CeCqTail) != target)
                    return Errno.EIO;
                bool ok = true;
                for (int i = 0; i < n; i++)
                {
                    var slot = _cq.Span.Slice((int)(_cqHead & (Entries - 1)) * DmaCompletion.Size, DmaCompletion.Size);
                    ok &= DmaCompletion.Read(slot).Status == DmaStatus.Completed;
                    slot.Clear();
                    _cqHead = (_cqHead + 1) & IndexMask;
                }
                bar.Write32(CeCqHead, _cqHead);
                Interlocked.Add(ref _descriptors, n);
                if (!ok)
                    return Errno.EIO;
                Interlocked.Add(ref _bytes, bytes);
            }
        }
        return Errno.Ok;
    }

    /// <summary>Descriptors submitted so far (one per run of contiguous pages).</summary>
    public long Descriptors => Interlocked.Read(ref _descriptors);

    // Merges pages whose source and destination both continue the previous page's (or that zero-fill a continuing
    // destination) into one descriptor: VRAM comes from a lowest-first bitmap and buddy-allocated system pages are
    // often contiguous, so a 2 MiB chunk is typically a handful of descriptors instead of 512.
    private static List<(ulong Source, ulong Destination, uint Length)> Coalesce(IReadOnlyList<(ulong Source, ulong Destination)> pages)
    {
        const uint page = (uint)PhysicalMemory.PageSize;
        const uint maxLength = 16u << 20;   // well below the engine's 64 MiB descriptor limit
        var runs = new List<(ulong Source, ulong Destination, uint Length)>();
        foreach (var (src, dst) in pages)
        {
            if (runs.Count > 0)
            {
                var (rs, rd, rl) = runs[^1];
                bool zero = src == ZeroSource && rs == ZeroSource;
                bool follows = dst == rd + rl && (zero || (src != ZeroSource && rs != ZeroSource && src == rs + rl));
                if (follows && rl <= maxLength - page)
                {
                    runs[^1] = (rs, rd, rl + page);
                    continue;
                }
            }
            runs.Add((src, dst, page));
        }
        return runs;
    }

    /// <summary>The source value that means "fill the destination page with zeros".</summary>
    public const ulong ZeroSource = ulong.MaxValue;

    private bool ReachedOrStopped(uint target, int generation)
    {
        var bar = _device.Bar;
        return bar.Read32(CeCqTail) == target || (bar.Read64(CeSqStatus) & 0x3) > 1 || (bar.Read64(CeCqStatus) & 0x3) > 1
               || _device.ResetGeneration != generation || _device.IsQuiesced || _device.IsResetting;
    }
}
