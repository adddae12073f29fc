using System.Buffers.Binary;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;
using static HmmEmu.Rnic.Model.Tests.RnicTestData;

namespace HmmEmu.Rnic.Model.Tests;

/// <summary>
/// Bad input from the driver, the process or the peer: every case ends in the status, event or register that
/// docs/rnic.md names, nothing outside the targeted object changes, no byte outside an MR is written, and nothing
/// throws into the host.
/// </summary>
public sealed class RnicBadInputTests
{
    private const RnicAccessFlags QpAllRemote = RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead | RnicAccessFlags.RemoteAtomic;

    private const ulong Page = RawNic.Page;
    private const byte GuardByte = 0xA5;

    /// <summary>
    /// An MR registered over the middle of a larger coherent buffer: a guard page before it, and the rest of its last
    /// page plus at least two pages after it, all <see cref="GuardByte"/>. The MTT maps only the MR's own pages.
    /// </summary>
    private sealed class GuardedMr(uint key, ulong iova, ulong length, DmaCoherentBuffer buffer)
    {
        public uint Key { get; } = key;

        public ulong Iova { get; } = iova;

        public ulong Length { get; } = length;

        public DmaCoherentBuffer Buffer { get; } = buffer;

        public Span<byte> Bytes => Buffer.Span.Slice((int)Page, (int)Length);

        public void AssertGuardsIntact()
        {
            var span = Buffer.Span;
            int before = span[..(int)Page].IndexOfAnyExcept(GuardByte);
            int after = span[((int)Page + (int)Length)..].IndexOfAnyExcept(GuardByte);
            Assert.True(before < 0, $"the guard page before MR {Key:x} was written at byte {before}");
            Assert.True(after < 0, $"the guard after MR {Key:x} was written at byte {after} past its end");
        }
    }

    private static GuardedMr RegGuarded(RawNic nic, uint pd, ulong iova, ulong length, RnicAccessFlags access)
    {
        Assert.Equal(0UL, iova % Page);
        ulong pages = RnicMttEntry.PagesSpanned(iova, length);
        var buffer = nic.Alloc((pages + 3) * Page);
        buffer.Span.Fill(GuardByte);
        buffer.Span.Slice((int)Page, (int)length).Clear();
        var mtt = nic.Alloc(pages * RnicMttEntry.Size);
        for (ulong i = 0; i < pages; i++)
        {
            RnicMttEntry.Create(buffer.BusAddress + Page + (i * Page), writable: true)
                .Write(mtt.Span.Slice((int)(i * RnicMttEntry.Size), RnicMttEntry.Size));
        }
        var done = nic.ExecuteOk(RnicCommand.RegMr(0, pd, iova, length, access, mtt.BusAddress, pages, onDemand: false));
        return new GuardedMr(done.Key, iova, length, buffer);
    }

    private static RnicSendWqe WriteWqe(ulong wrId, uint lkey, ulong local, uint length, ulong remote, uint rkey,
        RnicSendFlags flags = RnicSendFlags.Signaled) =>
        new(RnicWrOpcode.RdmaWrite, flags, 1, 0, wrId, remote, rkey, Sge0: new RnicSge(local, length, lkey));

    private static RnicSendWqe ReadWqe(ulong wrId, uint lkey, ulong local, uint length, ulong remote, uint rkey) =>
        new(RnicWrOpcode.RdmaRead, RnicSendFlags.Signaled, 1, 0, wrId, remote, rkey, Sge0: new RnicSge(local, length, lkey));

    private static RnicSendWqe SendWqe(ulong wrId, uint lkey, ulong local, uint length) =>
        new(RnicWrOpcode.Send, RnicSendFlags.Signaled, 1, 0, wrId, 0, 0, Sge0: new RnicSge(local, length, lkey));

    /// <summary>The QP, CQ and device events since the last drain (port events left out).</summary>
    private static List<RnicEqe> Events(RawNic nic) =>
        nic.DrainEvents().FindAll(e => e.Type is not (RnicEventType.PortActive or RnicEventType.PortErr));

    private static List<(RnicEventType Type, uint Object, RnicWcStatus Status)> Summary(List<RnicEqe> events) =>
        events.ConvertAll(e => (e.Type, e.ObjectNumber, e.Status));

    /// <summary>Collects events until one of <paramref name="type"/> has arrived; returns all of them.</summary>
    private static List<RnicEqe> WaitEvents(RnicTestMachine m, RawNic nic, RnicEventType type)
    {
        var all = new List<RnicEqe>();
        m.WaitFor(() =>
        {
            all.AddRange(Events(nic));
            return all.Exists(e => e.Type == type);
        }, $"a {type} event");
        return all;
    }

    private static void AssertCqe(RnicCqe cqe, ulong wrId, RnicWcStatus status, RnicWcOpcode opcode)
    {
        Assert.Equal((wrId, status, opcode), (cqe.WrId, cqe.Status, cqe.Opcode));
    }

    // ---- malformed send WQEs ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("reserved byte 0x03")]
    [InlineData("reserved word 0x1C")]
    [InlineData("reserved bytes 0x30")]
    [InlineData("sge count 5")]
    [InlineData("unknown opcode")]
    [InlineData("unknown flag")]
    [InlineData("atomic with two sges")]
    [InlineData("atomic sge of 4 bytes")]
    public void SendWqe_Malformed_CompletesLocQpOpErrRaisesQpFatalAndFlushesTheRest(string defect)
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 4 * Page, RnicAccessFlags.LocalWrite);
            var dst = RegGuarded(m.NicB, qb.Pd, 0x7000_0000, 4 * Page, AllRemote);
            Fill(src.Bytes, 5);
            RawNic.PostSend(qa, WriteWqe(1, src.Key, src.Iova, 100, dst.Iova, dst.Key));
            AssertCqe(m.NicA.WaitCqe(qa), 1, RnicWcStatus.Success, RnicWcOpcode.RdmaWrite);
            Events(m.NicA);
            Events(m.NicB);

            var bad = defect.StartsWith("atomic", StringComparison.Ordinal)
                ? new RnicSendWqe(RnicWrOpcode.AtomicFetchAndAdd, RnicSendFlags.Signaled, 1, 0, 2, dst.Iova, dst.Key, CompareAdd: 1,
                    Sge0: new RnicSge(src.Iova, 8, src.Key), Sge1: new RnicSge(src.Iova + 8, 8, src.Key))
                : WriteWqe(2, src.Key, src.Iova, 100, dst.Iova + Page, dst.Key);
            RawNic.PostSend(qa, bad, ring: false);
            var slot = qa.Sq.Span.Slice(RnicSendWqe.Size, RnicSendWqe.Size);
            switch (defect)
            {
                case "reserved byte 0x03": slot[RnicSendWqe.Reserved0Offset] = 1; break;
                case "reserved word 0x1C": slot[RnicSendWqe.Reserved1Offset + 3] = 0x80; break;
                case "reserved bytes 0x30": slot[RnicSendWqe.Reserved2Offset + 15] = 0xFF; break;
                case "sge count 5": slot[RnicSendWqe.SgeCountOffset] = 5; break;
                case "unknown opcode": slot[RnicSendWqe.OpcodeOffset] = 7; break;
                case "unknown flag": slot[RnicSendWqe.FlagsOffset] |= 0x08; break;
                case "atomic with two sges": slot[RnicSendWqe.SgeCountOffset] = 2; break;
                case "atomic sge of 4 bytes": BinaryPrimitives.WriteUInt32LittleEndian(slot[(RnicSendWqe.SgesOffset + RnicSge.LengthOffset)..], 4); break;
            }
            // An unsignaled WRITE behind it: flushed WQEs always complete.
            RawNic.PostSend(qa, WriteWqe(3, src.Key, src.Iova, 100, dst.Iova + (2 * Page), dst.Key, RnicSendFlags.None));

            var failed = m.NicA.WaitCqe(qa);
            Assert.Equal((2UL, RnicWcStatus.LocQpOpErr, (ushort)1), (failed.WrId, failed.Status, failed.WqeIndex));
            AssertCqe(m.NicA.WaitCqe(qa), 3, RnicWcStatus.WrFlushErr, RnicWcOpcode.RdmaWrite);
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            var events = Events(m.NicA);
            Assert.Equal([(RnicEventType.QpFatal, qa.Qpn, RnicWcStatus.LocQpOpErr)], Summary(events));
            Assert.Equal(1u, events[0].WqeIndex);
            // Posted later: flushed at once.
            RawNic.PostSend(qa, WriteWqe(4, src.Key, src.Iova, 100, dst.Iova + (3 * Page), dst.Key));
            AssertCqe(m.NicA.WaitCqe(qa), 4, RnicWcStatus.WrFlushErr, RnicWcOpcode.RdmaWrite);
            Assert.Null(RawNic.Poll(qa));
            // The peer never saw any of it.
            Assert.Equal(RnicQpState.Rts, m.NicB.QueryState(qb.Qpn));
            Assert.Empty(Events(m.NicB));
            Assert.True(dst.Bytes[..100].SequenceEqual(src.Bytes[..100]));
            Assert.True(dst.Bytes[100..].IndexOfAnyExcept((byte)0) < 0);
            dst.AssertGuardsIntact();
        });
    }

    // ---- remote access errors -------------------------------------------------------------------------------------

    [Theory]
    [InlineData("stale key byte")]
    [InlineData("rkey of another pd")]
    [InlineData("mr without remote write")]
    [InlineData("qp without remote write")]
    [InlineData("past the end")]
    [InlineData("before the start")]
    public void Write_BadRemoteAccess_CompletesRemAccessErrAndLeavesTheTargetUntouched(string defect)
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var qpAccess = defect == "qp without remote write" ? RnicAccessFlags.RemoteRead | RnicAccessFlags.RemoteAtomic : QpAllRemote;
            var (qa, qb) = m.ConnectedPair(access: qpAccess);
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 4 * Page, RnicAccessFlags.LocalWrite);
            Fill(src.Bytes, 3);
            uint? staleKey = null;
            if (defect == "stale key byte")
            {
                var old = m.NicB.RegMr(qb.Pd, 0x7000_0000, 3 * Page, AllRemote);
                m.NicB.ExecuteOk(RnicCommand.DeregMr(0, new RnicKey(old.Key)));
                staleKey = old.Key;
            }
            uint pd = defect == "rkey of another pd" ? m.NicB.AllocPd() : qb.Pd;
            var access = defect == "mr without remote write" ? RnicAccessFlags.LocalWrite | RnicAccessFlags.RemoteRead : AllRemote;
            var dst = RegGuarded(m.NicB, pd, 0x7000_0000, 3 * Page, access);
            if (staleKey is { } stale)
            {
                Assert.Equal(new RnicKey(stale).Index, new RnicKey(dst.Key).Index);     // the index was reused
                Assert.NotEqual(stale, dst.Key);                                        // with a new key byte
            }
            Fill(dst.Bytes, 9);
            byte[] before = dst.Bytes.ToArray();
            var (remote, length) = defect switch
            {
                "past the end" => (dst.Iova + dst.Length - 100, 200u),
                "before the start" => (dst.Iova - 8, 100u),
                _ => (dst.Iova, (uint)dst.Length),
            };
            Events(m.NicA);
            Events(m.NicB);

            RawNic.PostSend(qa, WriteWqe(1, src.Key, src.Iova, length, remote, staleKey ?? dst.Key));
            RawNic.PostSend(qa, WriteWqe(2, src.Key, src.Iova, 64, dst.Iova, dst.Key, RnicSendFlags.None));

            AssertCqe(m.NicA.WaitCqe(qa), 1, RnicWcStatus.RemAccessErr, RnicWcOpcode.RdmaWrite);
            AssertCqe(m.NicA.WaitCqe(qa), 2, RnicWcStatus.WrFlushErr, RnicWcOpcode.RdmaWrite);
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            Assert.Equal(RnicQpState.Err, m.NicB.QueryState(qb.Qpn));
            Assert.Equal([(RnicEventType.QpAccessErr, qb.Qpn, RnicWcStatus.RemAccessErr)], Summary(Events(m.NicB)));
            Assert.Empty(Events(m.NicA));
            Assert.True(dst.Bytes.SequenceEqual(before));
            dst.AssertGuardsIntact();
            Assert.Null(RawNic.Poll(qb));
        });
    }

    [Fact]
    public void Read_PastTheEndOfTheRemoteMr_CompletesRemAccessErrAndPlacesNothing()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            const ulong length = (3 * Page) - 100;
            var local = RegGuarded(m.NicA, qa.Pd, 0x20_0000, length, RnicAccessFlags.LocalWrite);
            var remote = RegGuarded(m.NicB, qb.Pd, 0x9000_0000, length, AllRemote);
            Fill(remote.Bytes, 4);
            // The whole MR, edge to edge: fine.
            RawNic.PostSend(qa, ReadWqe(1, local.Key, local.Iova, (uint)length, remote.Iova, remote.Key));
            var ok = m.NicA.WaitCqe(qa);
            Assert.Equal((RnicWcStatus.Success, (uint)length), (ok.Status, ok.ByteLen));
            Assert.True(local.Bytes.SequenceEqual(remote.Bytes));
            local.Bytes.Clear();
            Events(m.NicB);

            RawNic.PostSend(qa, ReadWqe(2, local.Key, local.Iova, (uint)length, remote.Iova + 100, remote.Key));

            AssertCqe(m.NicA.WaitCqe(qa), 2, RnicWcStatus.RemAccessErr, RnicWcOpcode.RdmaRead);
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            Assert.Equal(RnicQpState.Err, m.NicB.QueryState(qb.Qpn));
            Assert.Equal([(RnicEventType.QpAccessErr, qb.Qpn, RnicWcStatus.RemAccessErr)], Summary(Events(m.NicB)));
            Assert.True(local.Bytes.IndexOfAnyExcept((byte)0) < 0);
            local.AssertGuardsIntact();
            remote.AssertGuardsIntact();
        });
    }

    [Fact]
    public void Atomic_Misaligned_CompletesRemInvReqErrAndLeavesTheTargetUntouched()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var local = RegGuarded(m.NicA, qa.Pd, 0x10_0000, 16, RnicAccessFlags.LocalWrite);
            var target = RegGuarded(m.NicB, qb.Pd, 0x40_0000, Page, AllRemote);
            BinaryPrimitives.WriteUInt64LittleEndian(target.Bytes[^8..], 1000);
            // The last eight bytes of the MR: fine.
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.AtomicFetchAndAdd, RnicSendFlags.Signaled, 1, 0, 1, target.Iova + Page - 8,
                target.Key, CompareAdd: 5, Sge0: new RnicSge(local.Iova, 8, local.Key)));
            AssertCqe(m.NicA.WaitCqe(qa), 1, RnicWcStatus.Success, RnicWcOpcode.FetchAdd);
            Assert.Equal(1000UL, BinaryPrimitives.ReadUInt64LittleEndian(local.Bytes));
            Assert.Equal(1005UL, BinaryPrimitives.ReadUInt64LittleEndian(target.Bytes[^8..]));
            byte[] before = target.Bytes.ToArray();
            Events(m.NicB);

            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.AtomicCmpAndSwp, RnicSendFlags.Signaled, 1, 0, 2, target.Iova + Page - 12,
                target.Key, CompareAdd: 0, Swap: ulong.MaxValue, Sge0: new RnicSge(local.Iova + 8, 8, local.Key)));
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.AtomicFetchAndAdd, RnicSendFlags.None, 1, 0, 3, target.Iova,
                target.Key, CompareAdd: 1, Sge0: new RnicSge(local.Iova + 8, 8, local.Key)));

            AssertCqe(m.NicA.WaitCqe(qa), 2, RnicWcStatus.RemInvReqErr, RnicWcOpcode.CompSwap);
            AssertCqe(m.NicA.WaitCqe(qa), 3, RnicWcStatus.WrFlushErr, RnicWcOpcode.FetchAdd);
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            Assert.Equal(RnicQpState.Err, m.NicB.QueryState(qb.Qpn));
            Assert.Equal([(RnicEventType.QpReqErr, qb.Qpn, RnicWcStatus.RemInvReqErr)], Summary(Events(m.NicB)));
            Assert.True(target.Bytes.SequenceEqual(before));
            Assert.True(local.Bytes[8..].IndexOfAnyExcept((byte)0) < 0);
            target.AssertGuardsIntact();
            local.AssertGuardsIntact();
        });
    }

    // ---- receive-side errors --------------------------------------------------------------------------------------

    [Theory]
    [InlineData(4000u)]     // the first packet (4096 bytes) does not fit
    [InlineData(5000u)]     // the first packet fits, the second does not
    public void Send_LongerThanTheReceiveWqe_ReceiverGetsLocLenErrAndSenderRemInvReqErr(uint receiveBytes)
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 8192, RnicAccessFlags.LocalWrite);
            var buffer = RegGuarded(m.NicB, qb.Pd, 0x30_0000, receiveBytes, RnicAccessFlags.LocalWrite);
            Fill(src.Bytes, 8);
            RawNic.PostRecv(qb, new RnicRecvWqe(77, 1, new RnicSge(buffer.Iova, receiveBytes, buffer.Key)));
            RawNic.PostRecv(qb, new RnicRecvWqe(78, 1, new RnicSge(buffer.Iova, receiveBytes, buffer.Key)));
            Events(m.NicB);

            RawNic.PostSend(qa, SendWqe(5, src.Key, src.Iova, 6000));

            AssertCqe(m.NicB.WaitCqe(qb), 77, RnicWcStatus.LocLenErr, RnicWcOpcode.Recv);
            AssertCqe(m.NicB.WaitCqe(qb), 78, RnicWcStatus.WrFlushErr, RnicWcOpcode.Recv);
            AssertCqe(m.NicA.WaitCqe(qa), 5, RnicWcStatus.RemInvReqErr, RnicWcOpcode.Send);
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            Assert.Equal(RnicQpState.Err, m.NicB.QueryState(qb.Qpn));
            Assert.Equal([(RnicEventType.QpReqErr, qb.Qpn, RnicWcStatus.RemInvReqErr)], Summary(Events(m.NicB)));
            buffer.AssertGuardsIntact();
        });
    }

    [Theory]
    [InlineData("write source of another pd")]
    [InlineData("write source past its mr")]
    [InlineData("read destination of another pd")]
    [InlineData("read destination without local write")]
    public void LocalSge_BadLkey_CompletesLocProtErrAndLeavesBothSidesMemoryUntouched(string defect)
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            bool read = defect.StartsWith("read", StringComparison.Ordinal);
            uint pd = defect.Contains("another pd", StringComparison.Ordinal) ? m.NicA.AllocPd() : qa.Pd;
            var access = defect.Contains("without local write", StringComparison.Ordinal) ? RnicAccessFlags.RemoteRead : RnicAccessFlags.LocalWrite;
            var local = RegGuarded(m.NicA, pd, 0x10_0000, 2 * Page, access);
            var remote = RegGuarded(m.NicB, qb.Pd, 0x5000_0000, 2 * Page, AllRemote);
            Fill(local.Bytes, 1);
            Fill(remote.Bytes, 2);
            byte[] localBefore = local.Bytes.ToArray(), remoteBefore = remote.Bytes.ToArray();
            uint length = defect == "write source past its mr" ? (uint)(2 * Page) + 1 : (uint)(2 * Page);
            Events(m.NicA);

            RawNic.PostSend(qa, read
                ? ReadWqe(1, local.Key, local.Iova, length, remote.Iova, remote.Key)
                : WriteWqe(1, local.Key, local.Iova, length, remote.Iova, remote.Key));
            // FENCE: the WRITE behind a READ starts only once the READ has completed, here in error.
            RawNic.PostSend(qa, WriteWqe(2, local.Key, local.Iova, 8, remote.Iova, remote.Key, RnicSendFlags.Signaled | RnicSendFlags.Fence));

            AssertCqe(m.NicA.WaitCqe(qa), 1, RnicWcStatus.LocProtErr, read ? RnicWcOpcode.RdmaRead : RnicWcOpcode.RdmaWrite);
            AssertCqe(m.NicA.WaitCqe(qa), 2, RnicWcStatus.WrFlushErr, RnicWcOpcode.RdmaWrite);
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            Assert.Empty(Events(m.NicA));
            Assert.Equal(RnicQpState.Rts, m.NicB.QueryState(qb.Qpn));     // the peer did nothing wrong
            Assert.Empty(Events(m.NicB));
            Assert.True(local.Bytes.SequenceEqual(localBefore));
            Assert.True(remote.Bytes.SequenceEqual(remoteBefore));
            local.AssertGuardsIntact();
            remote.AssertGuardsIntact();
        });
    }

    [Fact]
    public void Send_NoReceiveWqeAndRnrRetry0_CompletesRnrRetryExcErrAfterOneRnrNak()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair(rnrRetry: 0);
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 4096, RnicAccessFlags.LocalWrite);

            RawNic.PostSend(qa, SendWqe(1, src.Key, src.Iova, 100));

            AssertCqe(m.NicA.WaitCqe(qa), 1, RnicWcStatus.RnrRetryExcErr, RnicWcOpcode.Send);
            Assert.Equal(1L, m.B.Stats.RnrNaksSent);
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            Assert.Equal(RnicQpState.Rts, m.NicB.QueryState(qb.Qpn));     // an RNR NAK does not end the responder
            Assert.Null(RawNic.Poll(qb));
        });
    }

    [Fact]
    public void Send_NoReceiveWqeAndRnrRetry2_GivesUpOnTheThirdRnrNak()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, _) = m.ConnectedPair(rnrRetry: 2);
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 4096, RnicAccessFlags.LocalWrite);

            RawNic.PostSend(qa, SendWqe(1, src.Key, src.Iova, 100));

            AssertCqe(m.NicA.WaitCqe(qa), 1, RnicWcStatus.RnrRetryExcErr, RnicWcOpcode.Send);
            Assert.Equal(3L, m.B.Stats.RnrNaksSent);
        });
    }

    [Fact]
    public void Send_NoReceiveWqeAndRnrRetry7_WaitsAndCompletesOnceAReceiveIsPosted()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair(rnrRetry: RnicQpAttributes.RnrRetryInfinite);
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 8192, RnicAccessFlags.LocalWrite);
            var buffer = RegGuarded(m.NicB, qb.Pd, 0x30_0000, 6000, RnicAccessFlags.LocalWrite);
            Fill(src.Bytes, 6);

            RawNic.PostSend(qa, SendWqe(1, src.Key, src.Iova, 6000));
            m.Scheduler.Sleep(300_000);
            Assert.True(m.B.Stats.RnrNaksSent > 3);
            Assert.Null(RawNic.Poll(qa));
            Assert.Equal(RnicQpState.Rts, m.NicA.QueryState(qa.Qpn));
            RawNic.PostRecv(qb, new RnicRecvWqe(9, 1, new RnicSge(buffer.Iova, 6000, buffer.Key)));

            AssertCqe(m.NicA.WaitCqe(qa), 1, RnicWcStatus.Success, RnicWcOpcode.Send);
            var received = m.NicB.WaitCqe(qb);
            AssertCqe(received, 9, RnicWcStatus.Success, RnicWcOpcode.Recv);
            Assert.Equal(6000u, received.ByteLen);
            Assert.True(buffer.Bytes.SequenceEqual(src.Bytes[..6000]));
            buffer.AssertGuardsIntact();
        });
    }

    [Fact]
    public void Write_LinkLosesEveryPacket_CompletesRetryExcErrAfterTheRetries()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair(timeout: 4, retry: 2);
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 4096, RnicAccessFlags.LocalWrite);
            var dst = RegGuarded(m.NicB, qb.Pd, 0x7000_0000, 4096, AllRemote);
            Fill(src.Bytes, 2);
            m.Link.SetFaults(1, 0, 0);

            RawNic.PostSend(qa, WriteWqe(1, src.Key, src.Iova, 4096, dst.Iova, dst.Key));
            RawNic.PostSend(qa, WriteWqe(2, src.Key, src.Iova, 8, dst.Iova, dst.Key, RnicSendFlags.None));

            AssertCqe(m.NicA.WaitCqe(qa), 1, RnicWcStatus.RetryExcErr, RnicWcOpcode.RdmaWrite);
            AssertCqe(m.NicA.WaitCqe(qa), 2, RnicWcStatus.WrFlushErr, RnicWcOpcode.RdmaWrite);
            Assert.True(m.A.Stats.Timeouts >= 3, $"{m.A.Stats.Timeouts} timeouts");
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            Assert.Equal(RnicQpState.Rts, m.NicB.QueryState(qb.Qpn));
            Assert.True(dst.Bytes.IndexOfAnyExcept((byte)0) < 0);
            dst.AssertGuardsIntact();
        });
    }

    // ---- commands ---------------------------------------------------------------------------------------------------

    private const RnicQpAttrMask InitMask = RnicQpAttrMask.State | RnicQpAttrMask.AccessFlags | RnicQpAttrMask.PkeyIndex | RnicQpAttrMask.Port;

    [Fact]
    public void ModifyQp_RequiredAttributeMissing_FailsBadAttributesWithTheMissingMask()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var qp = m.NicA.CreateQp(m.NicA.AllocPd(), 16, 16);
            var attrs = new RnicQpAttributes(State: RnicQpState.Init, Port: 1);

            var done = m.NicA.Modify(qp.Qpn, InitMask & ~RnicQpAttrMask.Port, attrs);

            Assert.Equal(RnicCommandStatus.BadAttributes, done.Status);
            Assert.Equal(((ulong)RnicQpAttrMask.Port, 0UL), (done.Out0, done.Out1));
            Assert.Equal(RnicQpState.Reset, m.NicA.QueryState(qp.Qpn));
            // Not allowed: a Timeout on RESET→INIT.
            done = m.NicA.Modify(qp.Qpn, InitMask | RnicQpAttrMask.Timeout, attrs);
            Assert.Equal(RnicCommandStatus.BadAttributes, done.Status);
            Assert.Equal((0UL, (ulong)RnicQpAttrMask.Timeout), (done.Out0, done.Out1));
            Assert.Equal(RnicQpState.Reset, m.NicA.QueryState(qp.Qpn));
            Assert.True(m.NicA.Modify(qp.Qpn, InitMask, attrs).IsOk);
            Assert.Equal(RnicQpState.Init, m.NicA.QueryState(qp.Qpn));
        });
    }

    [Fact]
    public void ModifyQp_ResetToRts_FailsBadTransitionWithTheCurrentState()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var qp = m.NicA.CreateQp(m.NicA.AllocPd(), 16, 16);
            const RnicQpAttrMask rts = RnicQpAttrMask.State | RnicQpAttrMask.Timeout | RnicQpAttrMask.RetryCnt |
                RnicQpAttrMask.RnrRetry | RnicQpAttrMask.MaxQpRdAtomic | RnicQpAttrMask.SqPsn;

            var done = m.NicA.Modify(qp.Qpn, rts, new RnicQpAttributes(State: RnicQpState.Rts, Timeout: 10, RetryCnt: 7));

            Assert.Equal((RnicCommandStatus.BadTransition, (ulong)RnicQpState.Reset), (done.Status, done.Out0));
            Assert.Equal(RnicQpState.Reset, m.NicA.QueryState(qp.Qpn));
        });
    }

    [Fact]
    public void DeallocPd_StillUsedByAnMrOrAQp_IsBusyUntilTheyAreGone()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            uint pd = m.NicA.AllocPd();
            var mr = m.NicA.RegMr(pd, 0x10_0000, 4096, RnicAccessFlags.LocalWrite);
            var qp = m.NicA.CreateQp(pd, 16, 16);

            Assert.Equal(RnicCommandStatus.Busy, m.NicA.Execute(RnicCommand.DeallocPd(0, pd)).Status);
            m.NicA.ExecuteOk(RnicCommand.DeregMr(0, new RnicKey(mr.Key)));
            Assert.Equal(RnicCommandStatus.Busy, m.NicA.Execute(RnicCommand.DeallocPd(0, pd)).Status);
            m.NicA.ExecuteOk(RnicCommand.DestroyQp(0, qp.Qpn));
            Assert.True(m.NicA.Execute(RnicCommand.DeallocPd(0, pd)).IsOk);
            Assert.Equal(RnicCommandStatus.BadObject, m.NicA.Execute(RnicCommand.DeallocPd(0, pd)).Status);
        });
    }

    [Fact]
    public void DestroyCq_UsedByAQp_IsBusyUntilTheQpIsDestroyed()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var qp = m.NicA.CreateQp(m.NicA.AllocPd(), 16, 16);

            var done = m.NicA.Execute(RnicCommand.DestroyCq(0, qp.Cq.Cqn));

            Assert.Equal(RnicCommandStatus.Busy, done.Status);
            Assert.True(m.NicA.Execute(RnicCommand.QueryCq(0, qp.Cq.Cqn)).IsOk);
            m.NicA.ExecuteOk(RnicCommand.DestroyQp(0, qp.Qpn));
            Assert.True(m.NicA.Execute(RnicCommand.DestroyCq(0, qp.Cq.Cqn)).IsOk);
        });
    }

    [Theory]
    [InlineData(RnicAccessFlags.RemoteWrite)]
    [InlineData(RnicAccessFlags.RemoteAtomic)]
    [InlineData(RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead)]
    [InlineData(RnicAccessFlags.LocalWrite | RnicAccessFlags.OnDemand)]
    public void RegMr_AccessThatCannotBeCombined_IsBadAccess(RnicAccessFlags access)
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            uint pd = m.NicA.AllocPd();
            var data = m.NicA.Alloc(4096);
            var mtt = m.NicA.Alloc(4096);
            RawNic.FillMtt(mtt, data, 0, 1);

            var done = m.NicA.Execute(RnicCommand.RegMr(0, pd, 0x10_0000, 4096, access, mtt.BusAddress, 1, onDemand: false));

            Assert.Equal(RnicCommandStatus.BadAccess, done.Status);
            Assert.Equal(0u, done.Key);
            Assert.Equal(RnicCommandStatus.BadObject, m.NicA.Execute(RnicCommand.QueryMr(0, RnicKey.Compose(1, 1))).Status);
        });
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(2UL)]
    [InlineData(4UL)]
    public void RegMr_MttEntryCountNotThePagesSpanned_IsBadArgument(ulong entries)
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            uint pd = m.NicA.AllocPd();
            var data = m.NicA.Alloc(4 * Page);
            var mtt = m.NicA.Alloc(4096);
            RawNic.FillMtt(mtt, data, 0, 4);

            // 0x10_0800 + 8192 spans three pages.
            var done = m.NicA.Execute(RnicCommand.RegMr(0, pd, 0x10_0800, 8192, RnicAccessFlags.LocalWrite, mtt.BusAddress, entries,
                onDemand: false));

            Assert.Equal(RnicCommandStatus.BadArgument, done.Status);
            Assert.True(m.NicA.Execute(RnicCommand.RegMr(0, pd, 0x10_0800, 8192, RnicAccessFlags.LocalWrite, mtt.BusAddress, 3,
                onDemand: false)).IsOk);
        });
    }

    [Fact]
    public void Command_UnknownOpcodeOrFlag_CompletesBadOpcodeAndTheQueueGoesOn()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();

            var unknown = m.NicA.Execute(new RnicCommand((RnicCommandOpcode)0x7F, 0, 0, 1, 2, 3));
            var flag = m.NicA.Execute(RnicCommand.Nop(0, (RnicCommandFlags)0x80));

            Assert.Equal(((RnicCommandOpcode)0x7F, RnicCommandStatus.BadOpcode), (unknown.Opcode, unknown.Status));
            Assert.Equal((RnicCommandOpcode.Nop, RnicCommandStatus.BadOpcode), (flag.Opcode, flag.Status));
            Assert.True(m.NicA.Execute(RnicCommand.Nop(0)).IsOk);
            Assert.Equal(1u, m.NicA.Bar0.Read32(RnicRegisters.CmdqStatus) & 3);     // still Running
        });
    }

    [Theory]
    [InlineData(RnicCommand.ReservedOffset)]
    [InlineData(RnicCommand.ReservedOffset + 1)]
    public void Command_NonZeroReservedField_CompletesBadOpcode(int reservedByte)
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var nic = m.NicA;
            // Written by hand at the device's producer (RawNic always writes the field zero); the NIC's last command.
            uint producer = nic.Bar0.Read32(RnicRegisters.CmdqTail);
            uint slot = producer % RawNic.CommandEntries;
            var entry = nic.Commands.Span.Slice((int)(slot * RnicCommand.Size), RnicCommand.Size);
            RnicCommand.AllocPd(0x5151, 0).Write(entry);
            entry[reservedByte] = 0x40;
            uint next = (producer + 1) % (2 * RawNic.CommandEntries);

            nic.Bar0.Write32(RnicRegisters.CmdqTail, next);
            m.WaitFor(() => nic.Bar0.Read32(RnicRegisters.CmdqHead) == next, "the hand-written command");

            var done = RnicCommandCompletion.Read(nic.Responses.Span.Slice((int)(slot * RnicCommandCompletion.Size), RnicCommandCompletion.Size));
            Assert.Equal((RnicCommandOpcode.AllocPd, RnicCommandStatus.BadOpcode, 0x5151u, 0u),
                (done.Opcode, done.Status, done.Token, done.ObjectNumber));
        });
    }

    [Fact]
    public void Resume_NoFaultPending_IsNotPendingOnEitherSide()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, _) = m.ConnectedPair();

            Assert.Equal(RnicCommandStatus.NotPending, m.NicA.Execute(RnicCommand.Resume(0, qa.Qpn, RnicFaultSide.Requester, false)).Status);
            Assert.Equal(RnicCommandStatus.NotPending, m.NicA.Execute(RnicCommand.Resume(0, qa.Qpn, RnicFaultSide.Responder, true)).Status);
            Assert.Equal(RnicCommandStatus.BadObject, m.NicA.Execute(RnicCommand.Resume(0, 999, RnicFaultSide.Requester, false)).Status);
            Assert.Equal(RnicQpState.Rts, m.NicA.QueryState(qa.Qpn));
        });
    }

    [Fact]
    public void ObjectTables_Full_AnswerNoResourcesAndKeepWhatExists()
    {
        var options = new RnicModelOptions { MaxPd = 2, MaxMr = 2, MaxCq = 2, MaxQp = 2 };
        using var m = RnicTestMachine.Create(options: options);
        m.Run(() =>
        {
            m.Start();
            var nic = m.NicA;
            Assert.Equal(2u, nic.Bar0.Read32(RnicRegisters.MaxPd));
            uint pd1 = nic.AllocPd();
            uint pd2 = nic.AllocPd();
            Assert.Equal(RnicCommandStatus.NoResources, nic.Execute(RnicCommand.AllocPd(0, 0)).Status);

            var ring = nic.Alloc(4096);
            uint cq1 = nic.ExecuteOk(RnicCommand.CreateCq(0, 0, ring.BusAddress, 16)).ObjectNumber;
            var ring2 = nic.Alloc(4096);
            nic.ExecuteOk(RnicCommand.CreateCq(0, 0, ring2.BusAddress, 16));
            Assert.Equal(RnicCommandStatus.NoResources, nic.Execute(RnicCommand.CreateCq(0, 0, nic.Alloc(4096).BusAddress, 16)).Status);

            RnicCommand CreateQp() => RnicCommand.CreateQp(0, pd1, 0, cq1, cq1, nic.Alloc(16 * RnicSendWqe.Size).BusAddress, 16,
                nic.Alloc(16 * RnicRecvWqe.Size).BusAddress, 16);
            uint qp1 = nic.ExecuteOk(CreateQp()).ObjectNumber;
            nic.ExecuteOk(CreateQp());
            Assert.Equal(RnicCommandStatus.NoResources, nic.Execute(CreateQp()).Status);

            var mr1 = nic.RegMr(pd2, 0x10_0000, 4096, RnicAccessFlags.LocalWrite);
            nic.RegMr(pd2, 0x20_0000, 4096, RnicAccessFlags.LocalWrite);
            var data = nic.Alloc(4096);
            var mtt = nic.Alloc(4096);
            RawNic.FillMtt(mtt, data, 0, 1);
            Assert.Equal(RnicCommandStatus.NoResources, nic.Execute(RnicCommand.RegMr(0, pd2, 0x30_0000, 4096,
                RnicAccessFlags.LocalWrite, mtt.BusAddress, 1, onDemand: false)).Status);

            // What exists still works, and freeing one makes room again.
            Assert.Equal(RnicQpState.Reset, nic.QueryState(qp1));
            Assert.True(nic.Execute(RnicCommand.QueryMr(0, new RnicKey(mr1.Key))).IsOk);
            nic.ExecuteOk(RnicCommand.DeregMr(0, new RnicKey(mr1.Key)));
            Assert.True(nic.Execute(RnicCommand.RegMr(0, pd2, 0x30_0000, 4096, RnicAccessFlags.LocalWrite, mtt.BusAddress, 1,
                onDemand: false)).IsOk);
        });
    }

    // ---- doorbells and BAR accesses ---------------------------------------------------------------------------------

    [Theory]
    [InlineData("wrong context page")]
    [InlineData("unknown qpn")]
    [InlineData("reserved bit 25")]
    [InlineData("reserved bit 31")]
    [InlineData("more than N ahead")]
    [InlineData("index of 2N")]
    [InlineData("backwards index")]
    [InlineData("qp in reset")]
    [InlineData("unknown offset")]
    [InlineData("rq of unknown qpn")]
    [InlineData("cq consumer beyond the producer")]
    [InlineData("arm of unknown cq")]
    public void Doorbell_Bad_IsDroppedCountedAndReportedAndChangesNothing(string defect)
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var nic = m.NicA;
            var (qa, qb) = m.ConnectedPair(wqEntries: 16);
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 4096, RnicAccessFlags.LocalWrite);
            var dst = RegGuarded(m.NicB, qb.Pd, 0x7000_0000, 4096, AllRemote);
            Fill(src.Bytes, 4);
            if (defect == "backwards index")
            {
                RawNic.PostSend(qa, WriteWqe(1, src.Key, src.Iova, 8, dst.Iova + 4000, dst.Key));
                AssertCqe(nic.WaitCqe(qa), 1, RnicWcStatus.Success, RnicWcOpcode.RdmaWrite);
            }
            var reset = nic.CreateQp(qa.Pd, 16, 16);
            // The WQE the good doorbell will start later; the bad one must not start it.
            RawNic.PostSend(qa, WriteWqe(2, src.Key, src.Iova, 1000, dst.Iova, dst.Key), ring: false);
            ulong page0 = RnicDoorbells.PageOf(0);
            ulong good = RnicDoorbells.Encode(qa.Qpn, qa.SqProducer);
            var (offset, value) = defect switch
            {
                "wrong context page" => (RnicDoorbells.PageOf(1) + RnicDoorbells.SqDoorbell, good),
                "unknown qpn" => (page0 + RnicDoorbells.SqDoorbell, RnicDoorbells.Encode(999, qa.SqProducer)),
                "reserved bit 25" => (page0 + RnicDoorbells.SqDoorbell, good | (1UL << 25)),
                "reserved bit 31" => (page0 + RnicDoorbells.SqDoorbell, good | (1UL << 31)),
                "more than N ahead" => (page0 + RnicDoorbells.SqDoorbell, RnicDoorbells.Encode(qa.Qpn, qa.Entries + 1)),
                "index of 2N" => (page0 + RnicDoorbells.SqDoorbell, RnicDoorbells.Encode(qa.Qpn, 2 * qa.Entries)),
                "backwards index" => (page0 + RnicDoorbells.SqDoorbell, RnicDoorbells.Encode(qa.Qpn, 0)),
                "qp in reset" => (page0 + RnicDoorbells.SqDoorbell, RnicDoorbells.Encode(reset.Qpn, 1)),
                "unknown offset" => (page0 + 0x20, good),
                "rq of unknown qpn" => (page0 + RnicDoorbells.RqDoorbell, RnicDoorbells.Encode(0xFF_FFFF, 1)),
                "cq consumer beyond the producer" => (page0 + RnicDoorbells.CqConsumerDoorbell, RnicDoorbells.Encode(qa.Cq.Cqn, 5)),
                "arm of unknown cq" => (page0 + RnicDoorbells.CqArmDoorbell, RnicDoorbells.EncodeArm(200, 0, solicitedOnly: true)),
                _ => throw new ArgumentOutOfRangeException(nameof(defect), defect, "no such case"),
            };
            nic.Bar0.Write32(RnicRegisters.Status, RnicRegisters.StatusErrors);
            uint errorsBefore = nic.Bar0.Read32(RnicRegisters.DoorbellErrors);
            uint busErrorsBefore = nic.Bar0.Read32(RnicRegisters.BusErrors);

            nic.Bar2.Write64(offset, value);

            Assert.Equal(errorsBefore + 1, nic.Bar0.Read32(RnicRegisters.DoorbellErrors));
            Assert.Equal(RnicRegisters.StatusDoorbellError, nic.Bar0.Read32(RnicRegisters.Status) & RnicRegisters.StatusErrors);
            Assert.Equal((uint)RnicDeviceError.BadDoorbell, nic.Bar0.Read32(RnicRegisters.ErrorCode));
            Assert.Equal(offset, nic.Bar0.Read64(RnicRegisters.ErrorInfo));
            Assert.Equal(busErrorsBefore, nic.Bar0.Read32(RnicRegisters.BusErrors));
            // Nothing moved: no WQE started, no CQE, no state change, the CQ untouched.
            m.Scheduler.Sleep(100_000);
            Assert.Null(RawNic.Poll(qa));
            Assert.True(dst.Bytes[..1000].IndexOfAnyExcept((byte)0) < 0);
            Assert.Equal(RnicQpState.Rts, nic.QueryState(qa.Qpn));
            Assert.Equal(RnicQpState.Reset, nic.QueryState(reset.Qpn));
            var cq = nic.ExecuteOk(RnicCommand.QueryCq(0, qa.Cq.Cqn));
            Assert.Equal((ushort)0, cq.Info);
            Assert.Equal(qa.Cq.Consumer, (uint)cq.Out0);
            // And the good doorbell still works.
            RawNic.RingSq(qa);
            AssertCqe(nic.WaitCqe(qa), 2, RnicWcStatus.Success, RnicWcOpcode.RdmaWrite);
            Assert.True(dst.Bytes[..1000].SequenceEqual(src.Bytes[..1000]));
            dst.AssertGuardsIntact();
            Assert.Equal(errorsBefore + 1, nic.Bar0.Read32(RnicRegisters.DoorbellErrors));
        });
    }

    [Fact]
    public void BarAccess_WrongSizeOrOffset_CountsBusErrorsReadsAllOnesAndChangesNothing()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var nic = m.NicA;
            IMmio bar0 = m.A;
            IMmio bar2 = m.A.Bar2;
            nic.Bar0.Write32(RnicRegisters.Status, RnicRegisters.StatusErrors);
            uint maskBefore = nic.Bar0.Read32(RnicRegisters.IntMask);
            uint before = nic.Bar0.Read32(RnicRegisters.BusErrors);

            Assert.Equal(ulong.MaxValue, nic.Bar0.Read64(RnicRegisters.Control));          // 8 bytes of a 32-bit register
            nic.Bar0.Write64(RnicRegisters.IntMask, RnicRegisters.IntAll);                 // dropped
            Assert.Equal(uint.MaxValue, nic.Bar0.Read32(RnicRegisters.Id + 2));            // misaligned
            Assert.Equal(uint.MaxValue, nic.Bar0.Read32(0x100));                           // no register there
            nic.Bar0.Write32(0x0FFC, 1);
            Assert.Equal(ulong.MaxValue, nic.Bar0.Read64(RnicRegisters.Bar0Size));         // past the BAR
            Assert.Equal(0xFFFFUL, bar0.Read(RnicRegisters.Id, 2));
            Assert.Equal(0xFFUL, bar0.Read(RnicRegisters.Id, 1));
            bar0.Write(RnicRegisters.Control, 1, 0);                                       // would disable: dropped
            Assert.Equal(uint.MaxValue, nic.Bar2.Read32(RnicDoorbells.SqDoorbell));        // BAR2 takes 8-byte accesses only
            nic.Bar2.Write32(RnicDoorbells.SqDoorbell, 2);
            nic.Bar2.Write64(RnicDoorbells.SqDoorbell + 4, 2);
            Assert.Equal(ulong.MaxValue, nic.Bar2.Read64(RnicDoorbells.Bar2Size));
            bar2.Write(RnicDoorbells.CqConsumerDoorbell, 2, 0);

            Assert.Equal(before + 14, nic.Bar0.Read32(RnicRegisters.BusErrors));
            Assert.Equal(RnicRegisters.StatusBusError, nic.Bar0.Read32(RnicRegisters.Status) & RnicRegisters.StatusErrors);
            Assert.Equal(0u, nic.Bar0.Read32(RnicRegisters.DoorbellErrors));
            Assert.Equal(maskBefore, nic.Bar0.Read32(RnicRegisters.IntMask));
            Assert.Equal(0UL, nic.Bar2.Read64(RnicDoorbells.SqDoorbell));                  // a good read of a doorbell: 0
            Assert.True(m.A.IsEnabled);
            Assert.True(nic.Execute(RnicCommand.Nop(0)).IsOk);
        });
    }

    // ---- CQ overrun, deregistration under traffic -------------------------------------------------------------------

    [Fact]
    public void Cq_OverrunByAThirdCompletion_RaisesCqErrStopsTheCqAndMovesTheQpToErr()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair(cqEntries: 2);
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 4096, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x7000_0000, 4096, AllRemote);
            Events(m.NicA);

            for (ulong i = 1; i <= 3; i++)
                RawNic.PostSend(qa, WriteWqe(i, src.Key, src.Iova, 64, dst.Iova + (i * 64), dst.Key));

            var events = WaitEvents(m, m.NicA, RnicEventType.QpFatal);
            Assert.Equal([RnicEventType.CqErr, RnicEventType.QpFatal], events.ConvertAll(e => e.Type));
            Assert.Equal((qa.Cq.Cqn, qa.Qpn), (events[0].ObjectNumber, events[1].ObjectNumber));
            Assert.Equal(RnicWcStatus.GeneralErr, events[1].Status);
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            var cq = m.NicA.ExecuteOk(RnicCommand.QueryCq(0, qa.Cq.Cqn));
            Assert.Equal(RnicCommandCompletion.CqInfoError, cq.Info & RnicCommandCompletion.CqInfoError);
            // The two that fit are there; the third was lost.
            AssertCqe(RawNic.Poll(qa)!.Value, 1, RnicWcStatus.Success, RnicWcOpcode.RdmaWrite);
            AssertCqe(RawNic.Poll(qa)!.Value, 2, RnicWcStatus.Success, RnicWcOpcode.RdmaWrite);
            Assert.Null(RawNic.Poll(qa));
            // A stopped CQ stays stopped: a later flush writes nothing.
            RawNic.PostSend(qa, WriteWqe(4, src.Key, src.Iova, 64, dst.Iova, dst.Key));
            m.Scheduler.Sleep(50_000);
            Assert.Null(RawNic.Poll(qa));
            Assert.Equal(RnicQpState.Rts, m.NicB.QueryState(qb.Qpn));
        });
    }

    [Fact]
    public void DeregMr_WhileAWriteStreamIsInFlight_CompletesAndNothingLandsAfterItOrOutsideTheMr()
    {
        // docs/rnic.md §11: DEREG_MR stops the key resolving at once and completes after the DMA in flight drained.
        // So each WRITE either landed whole before (Success) or meets the dead key (RemAccessErr, the rest flushed).
        const int writes = 4;
        const uint chunk = 256 * 1024;
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, writes * chunk, RnicAccessFlags.LocalWrite);
            var dst = RegGuarded(m.NicB, qb.Pd, 0x7000_0000, writes * chunk, AllRemote);
            Fill(src.Bytes, 7);
            Events(m.NicB);
            for (int i = 0; i < writes; i++)
            {
                ulong offset = (ulong)i * chunk;
                RawNic.PostSend(qa, WriteWqe((ulong)i, src.Key, src.Iova + offset, chunk, dst.Iova + offset, dst.Key));
            }
            m.WaitFor(() => dst.Bytes[0] != 0, "the first packet to land");

            m.NicB.ExecuteOk(RnicCommand.DeregMr(0, new RnicKey(dst.Key)));
            byte[] atDereg = dst.Bytes.ToArray();

            var statuses = new List<RnicWcStatus>();
            for (int i = 0; i < writes; i++)
            {
                var cqe = m.NicA.WaitCqe(qa);
                Assert.Equal((ulong)i, cqe.WrId);
                statuses.Add(cqe.Status);
            }
            int failedAt = statuses.IndexOf(RnicWcStatus.RemAccessErr);
            Assert.True(failedAt >= 0, $"no WRITE met the dead key: {string.Join(", ", statuses)}");
            Assert.All(statuses[..failedAt], s => Assert.Equal(RnicWcStatus.Success, s));
            Assert.All(statuses[(failedAt + 1)..], s => Assert.Equal(RnicWcStatus.WrFlushErr, s));
            for (int i = 0; i < failedAt; i++)
                Assert.True(dst.Bytes.Slice(i * (int)chunk, (int)chunk).SequenceEqual(src.Bytes.Slice(i * (int)chunk, (int)chunk)));
            Assert.True(dst.Bytes.SequenceEqual(atDereg));     // nothing landed once DEREG_MR completed
            dst.AssertGuardsIntact();
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            Assert.Equal(RnicQpState.Err, m.NicB.QueryState(qb.Qpn));
            Assert.Equal([(RnicEventType.QpAccessErr, qb.Qpn, RnicWcStatus.RemAccessErr)], Summary(Events(m.NicB)));
            Assert.Equal(RnicCommandStatus.BadObject, m.NicB.Execute(RnicCommand.QueryMr(0, new RnicKey(dst.Key))).Status);
            Assert.Equal(0, m.B.Translation.Tlb.ActiveUses);
        });
    }

    [Fact]
    public void Write_ResumedAfterItsTargetMrWasReregistered_NeverReachesTheNewMr()
    {
        // The requester pauses mid-WRITE on a local ODP fault; meanwhile the peer deregisters the target and registers
        // a new MR on the same index and iova. The rest of the old WRITE must meet the dead key (§5: a stale key gets
        // RemAccessErr, not the new MR's memory).
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 8 * Page, RnicAccessFlags.LocalWrite, onDemand: true);
            var old = RegGuarded(m.NicB, qb.Pd, 0x7000_0000, 8 * Page, AllRemote);
            Fill(src.Bytes, 5);
            RawNic.FillMtt(src, 0, 2, writable: false);
            RawNic.PostSend(qa, WriteWqe(1, src.Key, src.Iova, (uint)(8 * Page), old.Iova, old.Key));
            var fault = m.NicA.WaitEvent(RnicEventType.PageFault);
            Assert.Equal(src.Iova + (2 * Page), fault.Address);
            m.WaitFor(() => old.Bytes[(int)Page + 1] != 0, "the first two packets to land");

            m.NicB.ExecuteOk(RnicCommand.DeregMr(0, new RnicKey(old.Key)));
            var fresh = RegGuarded(m.NicB, qb.Pd, 0x7000_0000, 8 * Page, AllRemote);
            Assert.Equal(new RnicKey(old.Key).Index, new RnicKey(fresh.Key).Index);
            Events(m.NicB);
            RawNic.FillMtt(src, 2, 6, writable: false);
            m.NicA.ExecuteOk(RnicCommand.Resume(0, qa.Qpn, RnicFaultSide.Requester, error: false));

            AssertCqe(m.NicA.WaitCqe(qa), 1, RnicWcStatus.RemAccessErr, RnicWcOpcode.RdmaWrite);
            Assert.True(fresh.Bytes.IndexOfAnyExcept((byte)0) < 0, "the old WRITE reached the new MR");
            fresh.AssertGuardsIntact();
            old.AssertGuardsIntact();
            Assert.True(old.Bytes[(int)(2 * Page)..].IndexOfAnyExcept((byte)0) < 0);
            Assert.Equal(RnicQpState.Err, m.NicB.QueryState(qb.Qpn));
            Assert.Equal([(RnicEventType.QpAccessErr, qb.Qpn, RnicWcStatus.RemAccessErr)], Summary(Events(m.NicB)));
        });
    }

    // ---- fuzz -------------------------------------------------------------------------------------------------------

    /// <summary>The objects one fuzz epoch throws garbage at: a connected pair, a QP in RESET and one in INIT.</summary>
    private sealed record FuzzQps(RawQp A, RawQp B, RawQp Reset, RawQp Init)
    {
        public RawQp[] All => [A, B, Reset, Init];
    }

    /// <summary>The fixed objects of a fuzz run: the healthy pair with its MRs, and the fuzz PDs with a guarded MR each.</summary>
    private sealed record FuzzWorld(RawQp HealthyA, RawQp HealthyB, RawMr Source, RawMr Target, RawMr Receive,
        uint PdA, uint PdB, GuardedMr MrA, GuardedMr MrB)
    {
        public bool IsHealthy(RawNic nic, uint objectNumber) => ReferenceEquals(nic, HealthyA.Nic)
            ? objectNumber == HealthyA.Qpn || objectNumber == HealthyA.Cq.Cqn
            : objectNumber == HealthyB.Qpn || objectNumber == HealthyB.Cq.Cqn;
    }

    private const int FuzzEpochs = 20;
    private const int FuzzStepsPerEpoch = 200;
    private const int FuzzHealthyEvery = 40;
    private const int HealthyBytes = 64 * 1024;

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    public void Fuzz_RandomRegisterWritesAndWqeBytes_NeverThrowAndLeaveAHealthyPairIntact(ulong seed)
    {
        using var m = RnicTestMachine.Create(seed: seed);
        long busErrors = 0, doorbellErrors = 0;
        m.Run(() =>
        {
            m.Start();
            var rng = m.Scheduler.CreateRandom("rnic.bad-input.fuzz");
            var (ha, hb) = m.ConnectedPair();
            uint pdA = m.NicA.AllocPd(), pdB = m.NicB.AllocPd();
            var world = new FuzzWorld(ha, hb,
                m.NicA.RegMr(ha.Pd, 0x10_0000, HealthyBytes, RnicAccessFlags.LocalWrite),
                m.NicB.RegMr(hb.Pd, 0x7000_0000, HealthyBytes, AllRemote),
                m.NicB.RegMr(hb.Pd, 0x7100_0000, HealthyBytes, RnicAccessFlags.LocalWrite),
                pdA, pdB, RegGuarded(m.NicA, pdA, 0x20_0000, 4 * Page, AllRemote), RegGuarded(m.NicB, pdB, 0x20_0000, 4 * Page, AllRemote));
            Fill(world.Source.Bytes, (int)seed);
            byte[] source = world.Source.Bytes.ToArray();
            byte[] target = new byte[HealthyBytes];
            ulong healthyId = 0;

            for (int epoch = 0; epoch < FuzzEpochs; epoch++)
            {
                var qps = CreateFuzzQps(m, world, rng);
                for (int step = 0; step < FuzzStepsPerEpoch; step += FuzzHealthyEvery)
                {
                    // Valid traffic on the healthy pair while garbage flies around it.
                    int length = 1 + rng.NextInt(16 * 1024);
                    int from = rng.NextInt(HealthyBytes - length + 1), to = rng.NextInt(HealthyBytes - length + 1);
                    RawNic.PostRecv(hb, new RnicRecvWqe(++healthyId, 1, new RnicSge(world.Receive.Iova, (uint)length, world.Receive.Key)));
                    RawNic.PostSend(ha, WriteWqe(healthyId, world.Source.Key, world.Source.Iova + (ulong)from, (uint)length,
                        world.Target.Iova + (ulong)to, world.Target.Key));
                    RawNic.PostSend(ha, SendWqe(healthyId, world.Source.Key, world.Source.Iova + (ulong)to, (uint)length));
                    source.AsSpan(from, length).CopyTo(target.AsSpan(to));
                    for (int i = 0; i < FuzzHealthyEvery; i++)
                        FuzzStep(m, world, qps, rng);
                    AssertCqe(m.NicA.WaitCqe(ha), healthyId, RnicWcStatus.Success, RnicWcOpcode.RdmaWrite);
                    AssertCqe(m.NicA.WaitCqe(ha), healthyId, RnicWcStatus.Success, RnicWcOpcode.Send);
                    var received = m.NicB.WaitCqe(hb);
                    AssertCqe(received, healthyId, RnicWcStatus.Success, RnicWcOpcode.Recv);
                    Assert.Equal((uint)length, received.ByteLen);
                    Assert.True(world.Receive.Bytes[..length].SequenceEqual(source.AsSpan(to, length)), $"receive {healthyId} differs");
                    Assert.True(world.Target.Bytes.SequenceEqual(target), $"the healthy target differs after WRITE {healthyId}");
                    Assert.True(world.Source.Bytes.SequenceEqual(source), "the healthy source changed");
                    m.NicA.DrainEvents();
                    m.NicB.DrainEvents();
                }
                foreach (var qp in qps.All)
                {
                    var query = qp.Nic.ExecuteOk(RnicCommand.QueryQp(0, qp.Qpn, qp.Nic.Scratch.BusAddress));
                    var state = (RnicQpState)query.Info;
                    Assert.True(Enum.IsDefined(state) && state != RnicQpState.Sqe, $"QP {qp.Qpn} in state {state}");
                    qp.Nic.ExecuteOk(RnicCommand.DestroyQp(0, qp.Qpn));
                    qp.Nic.ExecuteOk(RnicCommand.DestroyCq(0, qp.Cq.Cqn));
                }
            }

            Assert.Equal((RnicQpState.Rts, RnicQpState.Rts), (m.NicA.QueryState(ha.Qpn), m.NicB.QueryState(hb.Qpn)));
            Assert.Equal(0, m.NicA.ExecuteOk(RnicCommand.QueryCq(0, ha.Cq.Cqn)).Info & RnicCommandCompletion.CqInfoError);
            Assert.Equal(0, m.NicB.ExecuteOk(RnicCommand.QueryCq(0, hb.Cq.Cqn)).Info & RnicCommandCompletion.CqInfoError);
            world.MrA.AssertGuardsIntact();
            world.MrB.AssertGuardsIntact();
            Assert.True(m.A.IsEnabled && m.B.IsEnabled);
            busErrors = m.NicA.Bar0.Read32(RnicRegisters.BusErrors) + (long)m.NicB.Bar0.Read32(RnicRegisters.BusErrors);
            doorbellErrors = m.NicA.Bar0.Read32(RnicRegisters.DoorbellErrors) + (long)m.NicB.Bar0.Read32(RnicRegisters.DoorbellErrors);
        });
        m.A.Translation.Tlb.AssertInvariants();
        m.B.Translation.Tlb.AssertInvariants();
        Assert.True(busErrors > 100 && doorbellErrors > 100, $"the fuzz hardly hit: {busErrors} bus errors, {doorbellErrors} doorbell errors");
    }

    private static FuzzQps CreateFuzzQps(RnicTestMachine m, FuzzWorld world, SimRandom rng)
    {
        var a = m.NicA.CreateQp(world.PdA, 8, 8);
        var b = m.NicB.CreateQp(world.PdB, 8, 8);
        var mtu = (RnicMtu)(1 + rng.NextInt(5));
        m.NicA.BringUp(a, b.Qpn, m.B.Address, 300, 400, 4, 1, 1, 1, QpAllRemote, mtu);
        m.NicB.BringUp(b, a.Qpn, m.A.Address, 400, 300, 4, 1, 1, 1, QpAllRemote, mtu);
        var reset = m.NicA.CreateQp(world.PdA, 8, 8);
        var init = m.NicA.CreateQp(world.PdA, 8, 8);
        Assert.True(m.NicA.Modify(init.Qpn, InitMask, new RnicQpAttributes(State: RnicQpState.Init, AccessFlags: QpAllRemote)).IsOk);
        return new FuzzQps(a, b, reset, init);
    }

    /// <summary>One random piece of bad input; sometimes lets the device run a little afterwards.</summary>
    private static void FuzzStep(RnicTestMachine m, FuzzWorld world, FuzzQps qps, SimRandom rng)
    {
        var nic = rng.Chance(0.5) ? m.NicA : m.NicB;
        IMmio bar0 = ReferenceEquals(nic, m.NicA) ? m.A : m.B;
        IMmio bar2 = ReferenceEquals(nic, m.NicA) ? m.A.Bar2 : m.B.Bar2;
        int kind = rng.NextInt(100);
        if (kind < 30)
        {
            // BAR0: any offset and size, except the three registers whose effect is meant to be global (CONTROL
            // resets everything, CMDQ_TAIL runs commands, EQ_GET consumes events the raw driver has not read).
            ulong offset = rng.NextUInt64(RnicRegisters.Bar0Size + 64);
            if (rng.Chance(0.7))
                offset &= ~3UL;
            ulong word = offset & ~3UL;
            if (word is RnicRegisters.Control or RnicRegisters.CmdqTail or RnicRegisters.EqGet)
                return;
            int size = rng.NextInt(10) switch { < 5 => 4, < 9 => 8, _ => 1 + rng.NextInt(2) };
            bar0.Write(offset, size, rng.NextUInt64());
        }
        else if (kind < 38)
        {
            bar0.Read(rng.NextUInt64(RnicRegisters.Bar0Size + 64), rng.Chance(0.5) ? 4 : 8);
        }
        else if (kind < 65)
        {
            FuzzDoorbell(nic, bar2, world, qps, rng);
        }
        else if (kind < 92)
        {
            FuzzWqe(world, qps, rng);
        }
        else if (kind < 96)
        {
            var qp = qps.All[rng.NextInt(4)];
            RawNic.Poll(qp);
        }
        else if (kind < 98)
        {
            var qp = qps.All[rng.NextInt(4)];
            var mask = (RnicQpAttrMask)(uint)rng.NextUInt64(1UL << 22);
            var attrs = new RnicQpAttributes((RnicQpState)rng.NextInt(8), (RnicQpState)rng.NextInt(8), (RnicMtu)rng.NextInt(7),
                (byte)rng.NextInt(3), 0, (byte)rng.NextInt(40), (byte)rng.NextInt(40), (RnicAccessFlags)rng.NextInt(16),
                (uint)rng.NextInt(600), (uint)rng.NextUInt64(1 << 25), (uint)rng.NextUInt64(1 << 25), (uint)rng.NextInt(4), 0,
                (byte)rng.NextInt(9), (byte)rng.NextInt(9), (byte)rng.NextInt(20), (byte)rng.NextInt(20), rng.Chance(0.5));
            qp.Nic.Modify(qp.Qpn, mask, attrs);
        }
        else
        {
            var qp = qps.All[rng.NextInt(4)];
            qp.Nic.Execute(new RnicCommand(RnicCommandOpcode.Resume, 0, 0, qp.Qpn, (ulong)rng.NextInt(4), (ulong)rng.NextInt(4)));
        }
        if (rng.Chance(0.3))
            m.Scheduler.Sleep(1 + rng.NextUInt64(3_000));
    }

    private static void FuzzDoorbell(RawNic nic, IMmio bar2, FuzzWorld world, FuzzQps qps, SimRandom rng)
    {
        ulong offset;
        ulong value;
        int size = 8;
        if (rng.Chance(0.8))
        {
            ulong page = rng.Chance(0.9) ? 0 : RnicDoorbells.PageOf(rng.NextInt(RnicDoorbells.Contexts));
            ulong register = rng.Chance(0.9) ? (ulong)rng.NextInt(4) * 8 : (ulong)rng.NextInt(512) * 8;
            var mine = Array.FindAll(qps.All, q => ReferenceEquals(q.Nic, nic));
            var qp = mine[rng.NextInt(mine.Length)];
            uint obj = rng.NextInt(10) switch
            {
                < 4 => qp.Qpn,
                < 8 => qp.Cq.Cqn,
                < 9 => (uint)rng.NextInt(8),
                _ => (uint)rng.NextUInt64(1 << 24),
            };
            uint index = (uint)rng.NextUInt64((2 * qp.Entries) + 4);
            value = ((ulong)index << 32) | obj;
            if (rng.Chance(0.1))
                value |= 1UL << (24 + rng.NextInt(8));
            offset = page + register;
        }
        else
        {
            offset = rng.NextUInt64(RnicDoorbells.Bar2Size + 64);
            value = rng.NextUInt64();
            size = rng.Chance(0.8) ? 8 : 4;
        }
        // Never ring the healthy pair's objects: that would be valid input, and the healthy pair's driver owns it.
        if (offset % RnicDoorbells.PageSize <= RnicDoorbells.CqArmDoorbell && world.IsHealthy(nic, RnicDoorbells.ObjectOf(value)))
            return;
        bar2.Write(offset, size, value);
    }

    /// <summary>Writes a valid, half-sensible or random WQE into a fuzz QP's SQ or RQ and (usually) rings for it.</summary>
    private static void FuzzWqe(FuzzWorld world, FuzzQps qps, SimRandom rng)
    {
        var qp = qps.All[rng.NextInt(4)];
        bool onA = ReferenceEquals(qp.Nic, world.HealthyA.Nic);
        var (local, remote) = onA ? (world.MrA, world.MrB) : (world.MrB, world.MrA);
        uint[] localKeys = onA ? [local.Key, world.Source.Key] : [local.Key, world.Target.Key, world.Receive.Key];
        uint[] remoteKeys = onA ? [remote.Key, world.Target.Key, world.Receive.Key] : [remote.Key, world.Source.Key];
        uint Key(uint[] keys, GuardedMr mr) => rng.NextInt(10) switch
        {
            < 5 => mr.Key,
            < 7 => keys[rng.NextInt(keys.Length)],
            < 8 => mr.Key ^ 1,
            < 9 => 0,
            _ => (uint)rng.NextUInt64(),
        };
        ulong Address(GuardedMr mr) => rng.Chance(0.8) ? mr.Iova + rng.NextUInt64(mr.Length + 64) - 32 : rng.NextUInt64();
        uint Length() => rng.NextInt(10) switch
        {
            < 6 => (uint)rng.NextInt(5000),
            < 9 => (uint)rng.NextInt(20_000),
            _ => (uint)rng.NextUInt64(),
        };
        RnicSge Sge() => new(Address(local), Length(), Key(localKeys, local));
        // A valid SGE of at most `max` bytes inside `mr` (aligned to `align`).
        RnicSge ValidSge(GuardedMr mr, int max, int align = 1)
        {
            int length = max == 8 ? 8 : 1 + rng.NextInt(max);
            ulong offset = rng.NextUInt64(mr.Length - (ulong)length + 1) & ~(ulong)(align - 1);
            return new RnicSge(mr.Iova + offset, (uint)length, mr.Key);
        }

        bool send = rng.Chance(0.6);
        uint entries = qp.Entries;
        uint producer = send ? qp.SqProducer : qp.RqProducer;
        uint slot = rng.Chance(0.8) ? producer % entries : (uint)rng.NextInt((int)entries);
        var ring = send ? qp.Sq.Span : qp.Rq.Span;
        int size = send ? RnicSendWqe.Size : RnicRecvWqe.Size;
        var bytes = ring.Slice((int)slot * size, size);
        int mode = rng.NextInt(10);
        if (mode < 2)
        {
            for (int i = 0; i < size; i += 8)
                BinaryPrimitives.WriteUInt64LittleEndian(bytes[i..], rng.NextUInt64());
        }
        else if (mode < 6)
        {
            // Well-formed and within the fuzz MRs: it should run, until the garbage around it ends the QP.
            if (send)
            {
                var opcode = (RnicWrOpcode)rng.NextInt(7);
                bool atomic = opcode is RnicWrOpcode.AtomicCmpAndSwp or RnicWrOpcode.AtomicFetchAndAdd;
                var sge = atomic ? ValidSge(local, 8) : ValidSge(local, 4096);
                var target = ValidSge(remote, atomic ? 8 : (int)sge.Length, atomic ? 8 : 1);
                var flags = rng.Chance(0.7) ? RnicSendFlags.Signaled : RnicSendFlags.None;
                new RnicSendWqe(opcode, flags, 1, (uint)rng.NextUInt64(), rng.NextUInt64(), target.Address, remote.Key,
                    rng.NextUInt64(), rng.NextUInt64(), sge).Write(bytes);
            }
            else
            {
                new RnicRecvWqe(rng.NextUInt64(), 2, ValidSge(local, 4096), ValidSge(local, 4096)).Write(bytes);
            }
        }
        else if (send)
        {
            var opcode = (RnicWrOpcode)rng.NextInt(8);
            byte count = rng.Chance(0.05) ? (byte)(5 + rng.NextInt(250)) : (byte)rng.NextInt(5);
            bool atomic = opcode is RnicWrOpcode.AtomicCmpAndSwp or RnicWrOpcode.AtomicFetchAndAdd;
            if (atomic && rng.Chance(0.7))
                count = 1;
            var sge0 = atomic && rng.Chance(0.7) ? Sge() with { Length = 8 } : Sge();
            ulong remoteAddress = Address(remote);
            if (atomic && rng.Chance(0.7))
                remoteAddress &= ~7UL;
            new RnicSendWqe(opcode, (RnicSendFlags)rng.NextInt(rng.Chance(0.95) ? 8 : 256), count, (uint)rng.NextUInt64(),
                rng.NextUInt64(), remoteAddress, Key(remoteKeys, remote), rng.NextUInt64(), rng.NextUInt64(),
                sge0, Sge(), Sge(), Sge()).Write(bytes);
            if (rng.Chance(0.1))
                bytes[RnicSendWqe.Reserved2Offset + rng.NextInt(16)] = (byte)(1 + rng.NextInt(255));
        }
        else
        {
            byte count = rng.Chance(0.05) ? (byte)(4 + rng.NextInt(250)) : (byte)rng.NextInt(4);
            new RnicRecvWqe(rng.NextUInt64(), count, Sge(), Sge(), Sge()).Write(bytes);
            if (rng.Chance(0.1))
                bytes[RnicRecvWqe.ReservedOffset + rng.NextInt(7)] = (byte)(1 + rng.NextInt(255));
        }
        if (rng.Chance(0.1))
            return;     // written, not rung (a later doorbell may pick it up)
        uint next = rng.Chance(0.75) ? (producer + 1) % (2 * entries) : (uint)rng.NextUInt64((2 * entries) + 4);
        if (send)
            qp.SqProducer = next;
        else
            qp.RqProducer = next;
        ulong register = send ? RnicDoorbells.SqDoorbell : RnicDoorbells.RqDoorbell;
        qp.Nic.Bar2.Write64(register, RnicDoorbells.Encode(qp.Qpn, next));
    }
}
