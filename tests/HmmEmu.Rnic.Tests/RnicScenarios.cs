using HmmEmu.Kernel;
using HmmEmu.Rnic.Driver;

namespace HmmEmu.Rnic.Tests;

/// <summary>
/// The RNIC scenarios of issue 6, each a body for <see cref="RnicMachine.Run"/>: two processes on two NICs, data checked
/// byte for byte. <see cref="RnicScenarioSeedTests"/> runs each over many seeds and in threaded mode.
/// </summary>
internal static class RnicScenarios
{
    public const RnicAccessFlags Remote = RnicAccessFlags.LocalWrite | RnicAccessFlags.RemoteWrite |
        RnicAccessFlags.RemoteRead | RnicAccessFlags.RemoteAtomic;

    public static readonly IReadOnlyDictionary<string, Action<RnicMachine>> All = new SortedDictionary<string, Action<RnicMachine>>(StringComparer.Ordinal)
    {
        ["all-opcodes-pinned"] = m => AllOpcodes(m, onDemand: false),
        ["all-opcodes-odp"] = m => AllOpcodes(m, onDemand: true),
        ["odp-first-touch"] = OdpFirstTouch,
        ["munmap-target-during-writes"] = MunmapTargetDuringWrites,
        ["fork-with-odp-mrs"] = ForkWithOdpMrs,
        ["bad-requests"] = BadRequests,
        ["lossy-link"] = LossyLink,
        ["prefetch-and-completion-events"] = PrefetchAndCompletionEvents,
    };

    /// <summary>WRITE, READ, SEND/RECV and both atomics between the two processes.</summary>
    public static void AllOpcodes(RnicMachine m, bool onDemand)
    {
        var pair = m.Connect();
        const int Bytes = 96 * 1024;
        ulong bufA = RnicMachine.Map(m.A, 2 * Bytes), bufB = RnicMachine.Map(m.B, 2 * Bytes);
        RnicMachine.Fill(m.A, bufA, Bytes, 3);
        RnicMachine.Fill(m.B, bufB + Bytes, Bytes, 9);
        var odp = onDemand ? RnicAccessFlags.OnDemand : 0;
        RnicMachine.Check(m.Ca.RegMr(pair.PdA, bufA, 2 * Bytes, Remote | odp, out var mrA));
        RnicMachine.Check(m.Cb.RegMr(pair.PdB, bufB, 2 * Bytes, Remote | odp, out var mrB));

        Post(m.Ca, pair.QpA, new IbvSendWr(1, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, [new RnicSge(bufA, Bytes, mrA!.Lkey)], bufB, mrB!.Rkey));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 1);
        Assert.Equal(RnicMachine.Read(m.A, bufA, Bytes), RnicMachine.Read(m.B, bufB, Bytes));

        Post(m.Ca, pair.QpA, new IbvSendWr(2, RnicWrOpcode.RdmaRead, RnicSendFlags.Signaled, [new RnicSge(bufA + Bytes, Bytes, mrA.Lkey)], bufB + Bytes, mrB.Rkey));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 2);
        Assert.Equal(RnicMachine.Read(m.B, bufB + Bytes, Bytes), RnicMachine.Read(m.A, bufA + Bytes, Bytes));

        RnicMachine.Check(m.Cb.PostRecv(pair.QpB, new IbvRecvWr(7, [new RnicSge(bufB + 4096, 16_384, mrB.Lkey)])));
        RnicMachine.Fill(m.A, bufA, 10_000, 42);
        Post(m.Ca, pair.QpA, new IbvSendWr(3, RnicWrOpcode.SendWithImm, RnicSendFlags.Signaled, [new RnicSge(bufA, 10_000, mrA.Lkey)], Imm: 0xCAFE));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 3);
        var recv = m.WaitCompletion(m.Cb, pair.CqB);
        Assert.Equal((RnicWcStatus.Success, 7UL, 10_000u, 0xCAFEu), (recv.Status, recv.WrId, recv.ByteLen, recv.Imm));
        Assert.Equal(RnicMachine.Read(m.A, bufA, 10_000), RnicMachine.Read(m.B, bufB + 4096, 10_000));

        m.B.WriteBytes(bufB, BitConverter.GetBytes(40UL));
        Post(m.Ca, pair.QpA, new IbvSendWr(4, RnicWrOpcode.AtomicFetchAndAdd, RnicSendFlags.Signaled, [new RnicSge(bufA + 64, 8, mrA.Lkey)], bufB, mrB.Rkey, CompareAdd: 2));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 4);
        Post(m.Ca, pair.QpA, new IbvSendWr(5, RnicWrOpcode.AtomicCmpAndSwp, RnicSendFlags.Signaled, [new RnicSge(bufA + 72, 8, mrA.Lkey)], bufB, mrB.Rkey, CompareAdd: 42, Swap: 1000));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 5);
        Assert.Equal(40UL, RnicMachine.ReadU64(m.A, bufA + 64));
        Assert.Equal(42UL, RnicMachine.ReadU64(m.A, bufA + 72));
        Assert.Equal(1000UL, RnicMachine.ReadU64(m.B, bufB));
        if (onDemand)
            Assert.True(m.Driver.Devices[0].FaultsHandled > 0 && m.Driver.Devices[1].FaultsHandled > 0);
    }

    /// <summary>ODP MRs over memory neither process has touched: both NICs fault the pages in.</summary>
    public static void OdpFirstTouch(RnicMachine m)
    {
        var pair = m.Connect();
        const int Bytes = 64 * 1024;
        ulong bufA = RnicMachine.Map(m.A, Bytes), bufB = RnicMachine.Map(m.B, Bytes);
        RnicMachine.Check(m.Ca.RegMr(pair.PdA, bufA, Bytes, Remote | RnicAccessFlags.OnDemand, out var mrA));
        RnicMachine.Check(m.Cb.RegMr(pair.PdB, bufB, Bytes, Remote | RnicAccessFlags.OnDemand, out var mrB));
        // Untouched source (zero-filled on first touch) into an untouched target.
        Post(m.Ca, pair.QpA, new IbvSendWr(1, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, [new RnicSge(bufA, Bytes, mrA!.Lkey)], bufB, mrB!.Rkey));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 1);
        Assert.All(RnicMachine.Read(m.B, bufB, Bytes), b => Assert.Equal(0, b));
        long faultsA = m.Driver.Devices[0].FaultsHandled, faultsB = m.Driver.Devices[1].FaultsHandled;
        Assert.True(faultsA > 0 && faultsB > 0, $"first touch must fault on both sides (A {faultsA}, B {faultsB})");
        Assert.Equal(Bytes / 4096, mrB.PagesMapped);
        // Now with data: the pages are mapped, no new faults are needed on B.
        RnicMachine.Fill(m.A, bufA, Bytes, 77);
        Post(m.Ca, pair.QpA, new IbvSendWr(2, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, [new RnicSge(bufA, Bytes, mrA.Lkey)], bufB, mrB.Rkey));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 2);
        Assert.Equal(RnicMachine.Read(m.A, bufA, Bytes), RnicMachine.Read(m.B, bufB, Bytes));
        Assert.Equal(faultsB, m.Driver.Devices[1].FaultsHandled);
    }

    /// <summary>
    /// B unmaps the target of a stream of RDMA WRITEs: the WRITEs that arrive after it fail; A's first failing WR
    /// completes RemAccessErr, its QP goes to ERR, and every later WR flushes with WrFlushErr.
    /// </summary>
    public static void MunmapTargetDuringWrites(RnicMachine m)
    {
        var pair = m.Connect();
        const int Writes = 48;
        ulong src = RnicMachine.Map(m.A, 4096), dst = RnicMachine.Map(m.B, Writes * 4096UL);
        RnicMachine.Fill(m.A, src, 4096, 5);
        RnicMachine.Check(m.Ca.RegMr(pair.PdA, src, 4096, RnicAccessFlags.LocalWrite, out var mrA));
        RnicMachine.Check(m.Cb.RegMr(pair.PdB, dst, Writes * 4096UL, Remote | RnicAccessFlags.OnDemand, out var mrB));
        for (int i = 0; i < Writes; i++)
        {
            Post(m.Ca, pair.QpA, new IbvSendWr((ulong)i, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled,
                [new RnicSge(src, 4096, mrA!.Lkey)], dst + ((ulong)i * 4096), mrB!.Rkey));
        }
        var first = m.WaitCompletion(m.Ca, pair.CqA);
        Assert.Equal((RnicWcStatus.Success, 0UL), (first.Status, first.WrId));
        Assert.Equal(Errno.Ok, m.B.Mm.Munmap(dst, Writes * 4096UL));
        int ok = 1, failed = 0, flushed = 0;
        for (int i = 1; i < Writes; i++)
        {
            var c = m.WaitCompletion(m.Ca, pair.CqA);
            Assert.Equal((ulong)i, c.WrId);
            switch (c.Status)
            {
                case RnicWcStatus.Success:
                    Assert.Equal(0, failed + flushed);      // no success after the failure
                    ok++;
                    break;
                case RnicWcStatus.RemAccessErr:
                    Assert.Equal(0, failed + flushed);
                    failed++;
                    break;
                default:
                    Assert.Equal(RnicWcStatus.WrFlushErr, c.Status);
                    Assert.Equal(1, failed);
                    flushed++;
                    break;
            }
        }
        Assert.Equal(1, failed);
        Assert.Equal(Writes, ok + failed + flushed);
        RnicMachine.Check(m.Ca.QueryQp(pair.QpA, out var attrs));
        Assert.Equal(RnicQpState.Err, attrs.State);
        Assert.Equal(IbvEventType.QpAccessErr, NextQpEvent(m.Cb).Type);
        Assert.True(m.Driver.Devices[1].FaultErrors > 0);
        Assert.Equal(0, mrB!.PagesMapped);
    }

    /// <summary>
    /// A process with an ODP MR forks; the parent then writes its buffer (breaking copy-on-write, so its pages change):
    /// the NIC must send the parent's new bytes, never the old page the child now shares.
    /// </summary>
    public static void ForkWithOdpMrs(RnicMachine m)
    {
        var pair = m.Connect();
        const int Bytes = 32 * 1024;
        ulong bufA = RnicMachine.Map(m.A, Bytes), bufB = RnicMachine.Map(m.B, Bytes);
        RnicMachine.Fill(m.A, bufA, Bytes, 1);
        RnicMachine.Check(m.Ca.RegMr(pair.PdA, bufA, Bytes, Remote | RnicAccessFlags.OnDemand, out var mrA));
        RnicMachine.Check(m.Cb.RegMr(pair.PdB, bufB, Bytes, Remote, out var mrB));
        Post(m.Ca, pair.QpA, new IbvSendWr(1, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, [new RnicSge(bufA, Bytes, mrA!.Lkey)], bufB, mrB!.Rkey));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 1);
        var before = RnicMachine.Read(m.A, bufA, Bytes);
        Assert.Equal(before, RnicMachine.Read(m.B, bufB, Bytes));
        var child = m.A.Fork();
        Assert.True(mrA.Invalidations > 0, "fork write-protects the parent's pages: the MR must have been invalidated");
        RnicMachine.Fill(m.A, bufA, Bytes, 200);
        Post(m.Ca, pair.QpA, new IbvSendWr(2, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, [new RnicSge(bufA, Bytes, mrA.Lkey)], bufB, mrB.Rkey));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 2);
        Assert.Equal(RnicMachine.Read(m.A, bufA, Bytes), RnicMachine.Read(m.B, bufB, Bytes));
        Assert.Equal(before, RnicMachine.Read(child, bufA, Bytes));
        // And the other way: an RDMA READ into the parent's buffer lands in the parent, not the child.
        RnicMachine.Fill(m.B, bufB, Bytes, 99);
        Post(m.Ca, pair.QpA, new IbvSendWr(3, RnicWrOpcode.RdmaRead, RnicSendFlags.Signaled, [new RnicSge(bufA, Bytes, mrA.Lkey)], bufB, mrB.Rkey));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 3);
        Assert.Equal(RnicMachine.Read(m.B, bufB, Bytes), RnicMachine.Read(m.A, bufA, Bytes));
        Assert.Equal(before, RnicMachine.Read(child, bufA, Bytes));
        child.Exit();
    }

    /// <summary>
    /// Wrong rkey, an MR of another PD, an MR without remote write, a misaligned atomic: each gets its IB status, and
    /// neither the target nor the guard pages around it change.
    /// </summary>
    public static void BadRequests(RnicMachine m)
    {
        ulong src = RnicMachine.Map(m.A, 4096);
        RnicMachine.Fill(m.A, src, 4096, 17);
        // The target MR sits between two guard pages.
        ulong region = RnicMachine.Map(m.B, 4 * 4096), target = region + 4096;
        var guard = new byte[4 * 4096];
        Array.Fill(guard, (byte)0xA5);
        m.B.WriteBytes(region, guard);

        (RnicWcStatus Status, Pair Pair) Try(Func<Pair, (uint Rkey, ulong Address)> pick, RnicWrOpcode opcode, RnicAccessFlags access)
        {
            var pair = m.Connect();
            RnicMachine.Check(m.Ca.RegMr(pair.PdA, src, 4096, RnicAccessFlags.LocalWrite, out var mrA));
            RnicMachine.Check(m.Cb.RegMr(pair.PdB, target, 2 * 4096, access, out var mrB));
            var (rkey, address) = pick(pair);
            var wr = opcode is RnicWrOpcode.AtomicFetchAndAdd
                ? new IbvSendWr(1, opcode, RnicSendFlags.Signaled, [new RnicSge(src, 8, mrA!.Lkey)], address, rkey == 0 ? mrB!.Rkey : rkey, CompareAdd: 1)
                : new IbvSendWr(1, opcode, RnicSendFlags.Signaled, [new RnicSge(src, 4096, mrA!.Lkey)], address, rkey == 0 ? mrB!.Rkey : rkey);
            Post(m.Ca, pair.QpA, wr);
            var c = m.WaitCompletion(m.Ca, pair.CqA);
            RnicMachine.Check(m.Ca.DeregMr(mrA));
            RnicMachine.Check(m.Cb.DeregMr(mrB!));
            return (c.Status, pair);
        }

        // A stale rkey: an MR registered and deregistered on the same index has a new key byte now.
        var (status, _) = Try(_ => (0xDEAD_BE01, target), RnicWrOpcode.RdmaWrite, Remote);
        Assert.Equal(RnicWcStatus.RemAccessErr, status);
        // An rkey of another PD of the same process.
        RnicMachine.Check(m.Cb.AllocPd(out var otherPd));
        RnicMachine.Check(m.Cb.RegMr(otherPd!, target, 4096, Remote, out var foreign));
        (status, _) = Try(_ => (foreign!.Rkey, target), RnicWrOpcode.RdmaWrite, Remote);
        Assert.Equal(RnicWcStatus.RemAccessErr, status);
        RnicMachine.Check(m.Cb.DeregMr(foreign!));
        // An MR without RemoteWrite.
        (status, _) = Try(_ => (0, target), RnicWrOpcode.RdmaWrite, RnicAccessFlags.LocalWrite | RnicAccessFlags.RemoteRead);
        Assert.Equal(RnicWcStatus.RemAccessErr, status);
        // Past the MR's end (the second page is registered, the guard after it is not).
        (status, _) = Try(_ => (0, target + 4096 + 2048), RnicWrOpcode.RdmaWrite, Remote);
        Assert.Equal(RnicWcStatus.RemAccessErr, status);
        // A misaligned atomic.
        (status, var last) = Try(_ => (0, target + 4), RnicWrOpcode.AtomicFetchAndAdd, Remote);
        Assert.Equal(RnicWcStatus.RemInvReqErr, status);
        RnicMachine.Check(m.Cb.QueryQp(last.QpB, out var attrs));
        Assert.Equal(RnicQpState.Err, attrs.State);
        Assert.Equal(guard, RnicMachine.Read(m.B, region, 4 * 4096));
    }

    // The next async event that is not about the port (PortActive arrives once the link is up).
    private static IbvAsyncEvent NextQpEvent(IbvContext c)
    {
        while (true)
        {
            var e = c.GetAsyncEvent();
            if (e.Type is not (IbvEventType.PortActive or IbvEventType.PortErr))
                return e;
        }
    }

    /// <summary>
    /// A link that loses, duplicates and reorders packets: RC retransmission still delivers a 1 MiB WRITE and a 1 MiB
    /// READ (ODP on one side, pinned on the other) intact, and every WR completes once, in order.
    /// </summary>
    public static void LossyLink(RnicMachine m)
    {
        var pair = m.Connect(timeout: 4);
        const int Bytes = 1 << 20;
        ulong bufA = RnicMachine.Map(m.A, 2 * Bytes), bufB = RnicMachine.Map(m.B, Bytes);
        RnicMachine.Fill(m.A, bufA, Bytes, 31);
        RnicMachine.Check(m.Ca.RegMr(pair.PdA, bufA, 2 * Bytes, Remote, out var mrA));
        RnicMachine.Check(m.Cb.RegMr(pair.PdB, bufB, Bytes, Remote | RnicAccessFlags.OnDemand, out var mrB));
        m.Link.SetFaults(0.02, 0.02, 0.02);
        Post(m.Ca, pair.QpA, new IbvSendWr(1, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, [new RnicSge(bufA, Bytes, mrA!.Lkey)], bufB, mrB!.Rkey));
        Post(m.Ca, pair.QpA, new IbvSendWr(2, RnicWrOpcode.RdmaRead, RnicSendFlags.Signaled, [new RnicSge(bufA + Bytes, Bytes, mrA.Lkey)], bufB, mrB.Rkey));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 1);
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 2);
        m.Link.SetFaults(0, 0, 0);
        var sent = RnicMachine.Read(m.A, bufA, Bytes);
        Assert.Equal(sent, RnicMachine.Read(m.B, bufB, Bytes));
        Assert.Equal(sent, RnicMachine.Read(m.A, bufA + Bytes, Bytes));
        Assert.True(m.Link.Stats.Dropped > 0, "the link must have lost packets");
        Assert.True(m.NicA.Stats.Retransmissions > 0, "the requester must have retransmitted");
    }

    /// <summary>
    /// ibv_advise_mr prefetches an ODP target so the WRITE takes no fault; a SEND with the solicited bit fires a
    /// solicited-only completion event on the receiver.
    /// </summary>
    public static void PrefetchAndCompletionEvents(RnicMachine m)
    {
        var pair = m.Connect();
        const int Bytes = 128 * 1024;
        ulong bufA = RnicMachine.Map(m.A, Bytes), bufB = RnicMachine.Map(m.B, Bytes);
        RnicMachine.Fill(m.A, bufA, Bytes, 12);
        RnicMachine.Check(m.Ca.RegMr(pair.PdA, bufA, Bytes, Remote, out var mrA));
        RnicMachine.Check(m.Cb.RegMr(pair.PdB, bufB, Bytes, Remote | RnicAccessFlags.OnDemand, out var mrB));
        RnicMachine.Check(m.Cb.AdviseMr(pair.PdB, IbvAdvice.PrefetchWrite, [new RnicSge(bufB, Bytes, mrB!.Lkey)]), "AdviseMr");
        Assert.Equal(Bytes / 4096, mrB.PagesMapped);
        long faults = m.Driver.Devices[1].FaultsHandled;
        Post(m.Ca, pair.QpA, new IbvSendWr(1, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, [new RnicSge(bufA, Bytes, mrA!.Lkey)], bufB, mrB.Rkey));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 1);
        Assert.Equal(faults, m.Driver.Devices[1].FaultsHandled);
        Assert.Equal(RnicMachine.Read(m.A, bufA, Bytes), RnicMachine.Read(m.B, bufB, Bytes));
        // An AdviseMr outside the MR is refused.
        Assert.Equal(Errno.EINVAL, m.Cb.AdviseMr(pair.PdB, IbvAdvice.Prefetch, [new RnicSge(bufB + Bytes - 8, 16, mrB.Lkey)]));

        // Completion events: an unsolicited SEND does not fire a solicited-only arm; a solicited one does.
        RnicMachine.Check(m.Cb.PostRecv(pair.QpB, new IbvRecvWr(10, [new RnicSge(bufB, 4096, mrB.Lkey)])));
        RnicMachine.Check(m.Cb.PostRecv(pair.QpB, new IbvRecvWr(11, [new RnicSge(bufB + 4096, 4096, mrB.Lkey)])));
        RnicMachine.Check(m.Cb.ReqNotifyCq(pair.CqB, solicitedOnly: true));
        Post(m.Ca, pair.QpA, new IbvSendWr(2, RnicWrOpcode.Send, RnicSendFlags.Signaled, [new RnicSge(bufA, 100, mrA.Lkey)]));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 2);
        m.Scheduler.Sleep(50_000);
        Assert.Equal(0, pair.CqB.PendingEvents);
        Post(m.Ca, pair.QpA, new IbvSendWr(3, RnicWrOpcode.Send, RnicSendFlags.Signaled | RnicSendFlags.Solicited, [new RnicSge(bufA, 200, mrA.Lkey)]));
        m.Cb.GetCqEvent(pair.CqB);
        var first = m.WaitCompletion(m.Cb, pair.CqB);
        var second = m.WaitCompletion(m.Cb, pair.CqB);
        Assert.Equal((10UL, 100u), (first.WrId, first.ByteLen));
        Assert.Equal((11UL, 200u, RnicWcFlags.Solicited), (second.WrId, second.ByteLen, second.Flags));
        Expect(m, m.Ca, pair.CqA, RnicWcStatus.Success, 3);
    }

    private static void Post(IbvContext c, IbvQp qp, IbvSendWr wr) => RnicMachine.Check(c.PostSend(qp, wr), "PostSend");

    private static void Expect(RnicMachine m, IbvContext c, IbvCq cq, RnicWcStatus status, ulong wrId)
    {
        var wc = m.WaitCompletion(c, cq);
        Assert.Equal((status, wrId), (wc.Status, wc.WrId));
    }
}
