using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;

namespace HmmEmu.Gpu.Driver;

/// <summary>
/// Turns one drained batch of fault records into page ranges and resolves them, as nouveau's, amdkfd's and Xe's fault
/// handlers do: sort by context, address and access; drop duplicates (a stalled access that faulted again after a
/// replay, several engines on one page), keeping the strongest access; merge contiguous pages of one context and access
/// into groups of at most <see cref="GpuDriverOptions.FaultGroupPages"/>; resolve each group; cancel the contexts whose
/// faults cannot be resolved; then replay once for the whole batch. Runs on the device's fault work queue only.
/// </summary>
internal sealed class GpuFaultBatcher(GpuDevice device)
{
    private const int PageShift = PhysicalMemory.PageShift;

    private readonly List<(ushort Context, ulong Page, GpuFaultAccess Access)> _faults = [];
    private readonly SortedSet<ushort> _cancel = [];
    private readonly Dictionary<ushort, (int Records, int Groups)> _perContext = [];
    private readonly List<(GpuContext Context, ulong Next, GpuFaultAccess Access)> _ahead = [];

    /// <summary>Resolves <paramref name="batch"/> and replays (or cancels) every fault in it. May sleep.</summary>
    public void Resolve(List<GpuFaultRecord> batch)
    {
        _faults.Clear();
        _cancel.Clear();
        _perContext.Clear();
        _ahead.Clear();
        foreach (var r in batch)
        {
            var access = r.Access is GpuFaultAccess.Read or GpuFaultAccess.Write or GpuFaultAccess.Atomic ? r.Access : GpuFaultAccess.Atomic;
            _faults.Add((r.Context, r.Address >> PageShift, access));
            Count(r.Context, records: 1, groups: 0);
        }
        _faults.Sort(static (a, b) =>
        {
            int c = a.Context.CompareTo(b.Context);
            if (c != 0)
                return c;
            c = a.Page.CompareTo(b.Page);
            return c != 0 ? c : ((byte)b.Access).CompareTo((byte)a.Access);   // strongest access first
        });

        int maxPages = Math.Max(1, device.Options.FaultGroupPages);
        int i = 0;
        while (i < _faults.Count)
        {
            var (context, first, access) = _faults[i];
            ulong last = first;
            int j = i + 1;
            // Skip duplicates of the first page, then extend over contiguous pages with the same access.
            while (j < _faults.Count && _faults[j].Context == context && _faults[j].Page == last)
                j++;
            while (j < _faults.Count && _faults[j].Context == context && _faults[j].Page == last + 1
                   && _faults[j].Access == access && (int)(last + 1 - first) < maxPages)
            {
                last++;
                j++;
                while (j < _faults.Count && _faults[j].Context == context && _faults[j].Page == last)
                    j++;
            }
            i = j;
            Count(context, records: 0, groups: 1);
            if (_cancel.Contains(context))
                continue;
            var ctx = device.ContextOf(context);
            ulong start = first << PageShift, end = (last + 1) << PageShift;
            var err = ctx is null ? Errno.EINVAL : ResolveGroup(ctx, start, end, access);
            if (err != Errno.Ok)
            {
                ctx?.NoteCancelled(start, access, err);
                _cancel.Add(context);
            }
            else if (ctx!.NoteFaultWindow((end - 1) / Window, out bool streaming) && streaming)
            {
                if (_ahead.Count > 0 && _ahead[^1].Context == ctx)
                    _ahead[^1] = (ctx, ((end - 1) / Window + 1) * Window, access);
                else
                    _ahead.Add((ctx, ((end - 1) / Window + 1) * Window, access));
            }
        }

        foreach (var (context, counts) in _perContext)   // order-independent: per-context counters only
            device.ContextOf(context)?.CountBatch(counts.Records, counts.Groups);
        foreach (ushort context in _cancel)               // ascending
            device.CancelFaults(context);
        device.ReplayFaults();

        // Fault-ahead: a context walking through memory window after window gets its next window mapped now, while
        // the device works on this one, instead of after the next fault's round trip (UVM's prefetching, simplest form).
        if (device.Options.FaultAheadWindows > 0)
        {
            foreach (var (ctx, next, access) in _ahead)
            {
                if (!_cancel.Contains(ctx.Id))
                    ResolveAhead(ctx, next, access);
            }
        }
    }

    private ulong Window => (ulong)Math.Max(1, device.Options.FaultWindowPages) << PageShift;

    // Maps (and, on the first-fault migration policy, migrates) the window at next, if it lies in the VMA that holds
    // the window before it. Best effort: nothing is cancelled if it fails, the device will simply fault there.
    private void ResolveAhead(GpuContext ctx, ulong next, GpuFaultAccess access)
    {
        var options = device.Options;
        ulong window = Window;
        for (int k = 0; k < options.FaultAheadWindows; k++, next += window)
        {
            using (device.Migrator.Lock())
            {
                ulong end = Math.Min(next + window, ctx.VmaEndOf(next - 1));
                if (next >= end || ctx.VmaStartOf(next) > next - 1 || ctx.IsClosed)
                    return;
                if (options.MigrateAfterFaults == 1 && ctx.MayMigrateWindow(next, window, options.ThrashMigrations)
                    && device.Migrator.ToVramLocked(ctx, next, end, out long moved) == Errno.Ok)
                {
                    ctx.CountMigrated(moved, 0);
                    if (moved > 0)
                        ctx.CountWindowMigration(next, window);
                }
                if (ctx.ResolveFault(next, end, access == GpuFaultAccess.Atomic ? GpuFaultAccess.Write : access, window) != Errno.Ok)
                    return;
                ctx.CountAhead();
            }
        }
    }

    // One group under the migration lock: migrate its window to VRAM first if it keeps faulting, then map it.
    private Errno ResolveGroup(GpuContext ctx, ulong start, ulong end, GpuFaultAccess access)
    {
        var options = device.Options;
        ulong window = (ulong)Math.Max(1, options.FaultWindowPages) << PageShift;
        ulong nap = ctx.ThrottleFor(start >> PageShift, options.ThrashThrottleNs);
        if (nap != 0)
        {
            device.Kernel.MightSleep("GPU fault throttle");
            device.Kernel.Scheduler.Sleep(nap);
        }
        using (device.Migrator.Lock())
        {
            // Already resolved since the device recorded the fault (fault-ahead got there first, or a duplicate of
            // a group this batch resolved): nothing to do but the replay. Migrating or mapping it again would zap
            // and rebuild a window the device is about to use.
            if (ctx.IsMapped(start, end, access))
                return Errno.Ok;
            if (ctx.CountWindowFault(start, window, options.MigrateAfterFaults) && ctx.MayMigrateWindow(start, window, options.ThrashMigrations))
            {
                ulong lo = start / window * window;
                if (device.Migrator.ToVramLocked(ctx, Math.Max(lo, ctx.VmaStartOf(start)), Math.Min(lo + window, ctx.VmaEndOf(start)), out long moved) == Errno.Ok)
                {
                    ctx.CountMigrated(moved, 0);
                    if (moved > 0)
                        ctx.CountWindowMigration(start, window);
                }
            }
            return ctx.ResolveFault(start, end, access, window);
        }
    }

    private void Count(ushort context, int records, int groups)
    {
        _perContext.TryGetValue(context, out var c);
        _perContext[context] = (c.Records + records, c.Groups + groups);
    }
}
