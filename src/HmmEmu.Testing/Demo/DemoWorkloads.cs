using System.Globalization;
using HmmEmu.Gpu.Driver;
using HmmEmu.Kernel;
using HmmEmu.Rnic;

namespace HmmEmu.Testing.Demo;

/// <summary>
/// The showcase workloads, in the order the demo runs them. Each computes its expected result on the host CPU (plain
/// C#), runs the work on the simulated machine, reads the result back through the simulated CPU's page tables, and
/// compares element by element.
/// </summary>
public static class DemoWorkloads
{
    private const int Page = 4096;

    /// <summary>Every workload, in run order.</summary>
    public static IReadOnlyList<DemoWorkload> All { get; } =
    [
        new("saxpy-fault", "GPU saxpy on fresh CPU-written memory: first-touch GPU faults", SaxpyFirstTouch),
        new("saxpy-prefetch", "the same saxpy after prefetching x and y to VRAM", SaxpyAfterPrefetch),
        new("ping-pong", "CPU writes, GPU adds, CPU reads back and doubles: 6 rounds on one buffer", PingPong),
        new("oversubscribe", "saxpy over a working set of 1.5x VRAM: eviction", Oversubscription),
        new("rdma-odp-write", "RDMA WRITE A->B over the two NICs, ODP MRs on both sides", RdmaOdpWrite),
        new("nic-reads-vram", "RDMA WRITE from a buffer the GPU holds in VRAM", NicReadsVram),
    ];

    /// <summary>The workload ids, in run order.</summary>
    public static IReadOnlyList<string> Ids { get; } = [.. All.Select(w => w.Id)];

    // 1a. x and y written by the CPU (system memory), then saxpy: every page the kernel touches faults on the GPU; the
    // driver resolves the faults in batches (hmm_range_fault, and its migrate-on-fault policy moves them to VRAM).
    private static DemoOutcome SaxpyFirstTouch(DemoMachine m, DemoOptions o)
    {
        const int n = 64 * 1024;
        var (x, y, xs, ys) = SaxpyInputs(m, n);
        var ctx = m.GpuContext;
        var before = ctx.Stats;
        var status = ctx.Wait(ctx.Saxpy(y, x, n, 2.5f));
        if (!status.IsOk)
            return new(false, $"saxpy failed: {status}");
        var after = ctx.Stats;
        TamperIf(m, o, "saxpy-fault", y);
        var got = DemoMachine.Read<float>(m.A, y, n);
        var r = Compare("y = 2.5x + y", got, i => (2.5f * xs[i]) + ys[i], $"{n} floats ({2 * n * 4 / Page} pages of x and y)");
        // The driver resolves a whole fault window per fault (and maps ahead of a streaming kernel), so few records map many pages.
        return r with
        {
            Detail = $"{r.Detail}; the kernel took {after.Faults - before.Faults} GPU fault record(s) in {after.Batches - before.Batches} batch(es), " +
                $"which mapped {after.PagesMapped - before.PagesMapped} pages (fault windows, migrate-on-fault to VRAM)",
        };
    }

    // 1b. The same after Prefetch(VRAM) of both arrays: the driver migrates and maps them up front, so the kernel runs
    // without faults; the CPU's read of y afterwards migrates y back (migrate_to_ram).
    private static DemoOutcome SaxpyAfterPrefetch(DemoMachine m, DemoOptions o)
    {
        const int n = 64 * 1024;
        var (x, y, xs, ys) = SaxpyInputs(m, n);
        var ctx = m.GpuContext;
        foreach (ulong a in (ReadOnlySpan<ulong>)[x, y])
        {
            var err = ctx.Prefetch(a, n * 4UL, GpuMemoryTarget.Vram);
            if (err != Errno.Ok)
                return new(false, $"prefetch failed: {err}");
        }
        long faults = ctx.Stats.Faults;
        var status = ctx.Wait(ctx.Saxpy(y, x, n, 2.5f));
        if (!status.IsOk)
            return new(false, $"saxpy failed: {status}");
        long kernelFaults = ctx.Stats.Faults - faults;
        TamperIf(m, o, "saxpy-prefetch", y);
        var got = DemoMachine.Read<float>(m.A, y, n);
        var r = Compare("y = 2.5x + y", got, i => (2.5f * xs[i]) + ys[i], $"{n} floats");
        return r with { Detail = $"{r.Detail}; the kernel itself took {kernelFaults} GPU fault(s)" };
    }

    // 2. One buffer shared by CPU and GPU: the GPU adds 1 (saxpy with a = 1 over a buffer of ones), the CPU checks and
    // doubles. With the default placement policy the buffer moves to VRAM on each GPU turn and back on each CPU turn.
    private static DemoOutcome PingPong(DemoMachine m, DemoOptions o)
    {
        const int n = 4096, rounds = 6;
        ulong ones = DemoMachine.Map(m.A, n * 4UL), acc = DemoMachine.Map(m.A, n * 4UL);
        DemoMachine.Write<float>(m.A, ones, Enumerable.Repeat(1f, n).ToArray());
        var expected = new float[n];
        for (int i = 0; i < n; i++)
            expected[i] = i % 17;
        DemoMachine.Write<float>(m.A, acc, expected);
        var ctx = m.GpuContext;
        for (int round = 0; round < rounds; round++)
        {
            var status = ctx.Wait(ctx.Saxpy(acc, ones, n, 1f));
            if (!status.IsOk)
                return new(false, $"round {round}: saxpy failed: {status}");
            for (int i = 0; i < n; i++)
                expected[i] += 1;
            if (round == rounds - 1)
                TamperIf(m, o, "ping-pong", acc);
            var v = DemoMachine.Read<float>(m.A, acc, n);
            var r = Compare($"round {round}: acc + 1", v, i => expected[i], "");
            if (!r.Verified)
                return r;
            for (int i = 0; i < n; i++)
            {
                v[i] *= 2;
                expected[i] *= 2;
            }
            DemoMachine.Write<float>(m.A, acc, v);
        }
        var final = DemoMachine.Read<float>(m.A, acc, n);
        var f = Compare("final acc", final, i => expected[i], $"{rounds} rounds of GPU +1 / CPU x2 on {n} floats, each round checked");
        return f;
    }

    // 3. Two buffers of 3/4 of VRAM each: x is prefetched to VRAM, then y (which evicts part of x), then saxpy over both
    // (its faults bring evicted pages back and evict others): every byte must survive the round trips.
    private static DemoOutcome Oversubscription(DemoMachine m, DemoOptions o)
    {
        int pages = m.Gpu.VramPages * 3 / 4;
        int n = pages * Page / 4;
        var (x, y, xs, ys) = SaxpyInputs(m, n);
        var ctx = m.GpuContext;
        foreach (ulong a in (ReadOnlySpan<ulong>)[x, y])
        {
            var err = ctx.Prefetch(a, (ulong)n * 4, GpuMemoryTarget.Vram);
            if (err != Errno.Ok)
                return new(false, $"prefetch failed: {err}");
        }
        var status = ctx.Wait(ctx.Saxpy(y, x, (ulong)n, 2f));
        if (!status.IsOk)
            return new(false, $"saxpy failed: {status}");
        TamperIf(m, o, "oversubscribe", y);
        var gotY = DemoMachine.Read<float>(m.A, y, n);
        var r = Compare("y = 2x + y", gotY, i => (2f * xs[i]) + ys[i], "");
        if (!r.Verified)
            return r;
        var gotX = DemoMachine.Read<float>(m.A, x, n);
        return Compare("x unchanged", gotX, i => xs[i],
            $"working set {2 * pages} pages, VRAM {m.Gpu.VramPages} pages; every element of x and y checked after saxpy");
    }

    // 4. A's buffer (CPU-written) is sent with an RDMA WRITE into B's untouched buffer; both MRs are on-demand-paging,
    // so NIC 1 faults on the source pages (requester) and NIC 2 on the destination pages (responder, RNR-retried).
    private static DemoOutcome RdmaOdpWrite(DemoMachine m, DemoOptions o)
    {
        const int bytes = 256 * 1024;
        ulong src = DemoMachine.Map(m.A, bytes), dst = DemoMachine.Map(m.B, bytes);
        var data = Pattern(bytes, 7);
        m.A.WriteBytes(src, data);
        var (pdA, pdB, cqA, qpA) = m.Connect();
        var outcome = WriteAndCheck(m, o, "rdma-odp-write", pdA, pdB, cqA, qpA, src, dst, bytes, data, srcOdp: true);
        return outcome with { Detail = $"{outcome.Detail}; both MRs on-demand" };
    }

    // 5. A buffer written by the CPU, prefetched to VRAM and updated there by a GPU kernel, is the source of an RDMA WRITE
    // through an ODP MR. The NIC cannot reach device-private VRAM: the RNIC driver's hmm_range_fault finds pages of
    // another owner and faults them, which runs the GPU driver's migrate_to_ram; the NIC then reads system memory.
    private static DemoOutcome NicReadsVram(DemoMachine m, DemoOptions o)
    {
        const int n = 16 * 1024, bytes = n * 4;
        var (x, buf, xs, bs) = SaxpyInputs(m, n);
        var ctx = m.GpuContext;
        if (ctx.Prefetch(buf, bytes, GpuMemoryTarget.Vram) is var err && err != Errno.Ok)
            return new(false, $"prefetch failed: {err}");
        var status = ctx.Wait(ctx.Saxpy(buf, x, n, 3f));               // buf = 3x + buf, computed in VRAM
        if (!status.IsOk)
            return new(false, $"saxpy failed: {status}");
        int inVram = DemoMachine.DevicePrivatePages(m.A, buf, bytes);
        var expected = new float[n];
        for (int i = 0; i < n; i++)
            expected[i] = (3f * xs[i]) + bs[i];
        long back = m.Gpu.PagesToSystem;
        ulong dst = DemoMachine.Map(m.B, bytes);
        var (pdA, pdB, cqA, qpA) = m.Connect();
        var outcome = WriteAndCheck(m, o, "nic-reads-vram", pdA, pdB, cqA, qpA, buf, dst, bytes,
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(expected.AsSpan()).ToArray(), srcOdp: true);
        int after = DemoMachine.DevicePrivatePages(m.A, buf, bytes);
        return outcome with
        {
            Detail = string.Create(CultureInfo.InvariantCulture,
                $"{outcome.Detail}; {inVram}/{bytes / Page} source pages were in VRAM (GPU-updated), the NIC's ODP faults migrated " +
                $"{m.Gpu.PagesToSystem - back} back to RAM (migrate_to_ram), {after} remain in VRAM"),
        };
    }

    // Registers the MRs, posts one signaled RDMA WRITE src -> dst, waits, and compares B's buffer with expected.
    private static DemoOutcome WriteAndCheck(DemoMachine m, DemoOptions o, string id, HmmEmu.Rnic.Driver.IbvPd pdA, HmmEmu.Rnic.Driver.IbvPd pdB,
        HmmEmu.Rnic.Driver.IbvCq cqA, HmmEmu.Rnic.Driver.IbvQp qpA, ulong src, ulong dst, int bytes, byte[] expected, bool srcOdp)
    {
        var odp = RnicAccessFlags.OnDemand;
        if (m.Ca.RegMr(pdA, src, (ulong)bytes, DemoMachine.Remote | (srcOdp ? odp : 0), out var mrA) is var e1 && e1 != Errno.Ok)
            return new(false, $"ibv_reg_mr(A) failed: {e1}");
        if (m.Cb.RegMr(pdB, dst, (ulong)bytes, DemoMachine.Remote | odp, out var mrB) is var e2 && e2 != Errno.Ok)
            return new(false, $"ibv_reg_mr(B) failed: {e2}");
        var post = m.Ca.PostSend(qpA, new HmmEmu.Rnic.Driver.IbvSendWr(1, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled,
            [new RnicSge(src, (uint)bytes, mrA!.Lkey)], dst, mrB!.Rkey));
        if (post != Errno.Ok)
            return new(false, $"ibv_post_send failed: {post}");
        var wc = m.WaitCompletion(cqA);
        if (wc.Status != RnicWcStatus.Success)
            return new(false, $"the RDMA WRITE completed with {wc.Status}");
        TamperIf(m, o, id, dst, process: m.B);
        var got = new byte[bytes];
        m.B.ReadBytes(dst, got);
        for (int i = 0; i < bytes; i++)
        {
            if (got[i] != expected[i])
                return new(false, $"B's byte {i} is 0x{got[i]:x2}, A sent 0x{expected[i]:x2}");
        }
        return new(true, $"{bytes / 1024} KiB arrived intact in B (CQE {wc.Status})");
    }

    // x[i] and y[i] chosen so every saxpy result is exact in f32; written by the CPU into fresh mappings of A.
    private static (ulong X, ulong Y, float[] Xs, float[] Ys) SaxpyInputs(DemoMachine m, int n)
    {
        ulong x = DemoMachine.Map(m.A, (ulong)n * 4), y = DemoMachine.Map(m.A, (ulong)n * 4);
        var xs = new float[n];
        var ys = new float[n];
        for (int i = 0; i < n; i++)
        {
            xs[i] = ((i * 7) % 101) - 50f;
            ys[i] = ((i * 13) % 37) * 0.5f;
        }
        DemoMachine.Write<float>(m.A, x, xs);
        DemoMachine.Write<float>(m.A, y, ys);
        return (x, y, xs, ys);
    }

    private static byte[] Pattern(int bytes, int seed)
    {
        var data = new byte[bytes];
        for (int i = 0; i < bytes; i++)
            data[i] = (byte)((i * 7) + seed + (i >> 12));
        return data;
    }

    private static DemoOutcome Compare(string what, float[] got, Func<int, float> expected, string checkedWhat)
    {
        for (int i = 0; i < got.Length; i++)
        {
            float e = expected(i);
            if (BitConverter.SingleToUInt32Bits(got[i]) != BitConverter.SingleToUInt32Bits(e))
                return new(false, string.Create(CultureInfo.InvariantCulture, $"{what}: element {i} is {got[i]}, the CPU computes {e}"));
        }
        return new(true, checkedWhat.Length == 0 ? what : $"{checkedWhat}: all match the CPU");
    }

    // The verifier test's hook: the CPU overwrites the third word of the result with a value no workload produces.
    private static void TamperIf(DemoMachine m, DemoOptions o, string id, ulong address, Process? process = null)
    {
        if (o.Tamper == id)
            (process ?? m.A).WriteBytes(address + 8, BitConverter.GetBytes(-12345.5f));
    }
}
