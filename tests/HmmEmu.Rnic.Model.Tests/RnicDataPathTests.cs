using HmmEmu.Simulation;
using static HmmEmu.Rnic.Model.Tests.RnicTestData;

namespace HmmEmu.Rnic.Model.Tests;

public sealed class RnicDataPathTests
{
    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Rdma_write_of_pinned_memory_arrives_byte_for_byte_and_completes(SchedulerMode mode)
    {
        using var m = RnicTestMachine.Create(mode);
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 64 * 1024, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x7000_0000, 64 * 1024, AllRemote);
            Fill(src.Bytes, 7);
            RawNic.PostSend(qa, Write(42, src, 0, 64 * 1024, dst, 0));
            var cqe = m.NicA.WaitCqe(qa);
            Assert.Equal(RnicWcStatus.Success, cqe.Status);
            Assert.Equal(RnicWcOpcode.RdmaWrite, cqe.Opcode);
            Assert.Equal(42UL, cqe.WrId);
            Assert.True(src.Bytes.SequenceEqual(dst.Bytes));
            Assert.Null(RawNic.Poll(qb));
        });
    }

    [Fact]
    public void Rdma_read_brings_remote_bytes_into_the_local_sges()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var local = m.NicA.RegMr(qa.Pd, 0x20_0000, 3 * 4096, RnicAccessFlags.LocalWrite);
            var remote = m.NicB.RegMr(qb.Pd, 0x9000_0000, 3 * 4096, AllRemote);
            Fill(remote.Bytes, 3);
            // Two SGEs: 5000 bytes then 7288 bytes, reading 12288 bytes from offset 0.
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.RdmaRead, RnicSendFlags.Signaled, 2, 0, 9, remote.Iova, remote.Key,
                Sge0: new RnicSge(local.Iova + 7288, 5000, local.Key), Sge1: new RnicSge(local.Iova, 7288, local.Key)));
            var cqe = m.NicA.WaitCqe(qa);
            Assert.Equal(RnicWcStatus.Success, cqe.Status);
            Assert.Equal(RnicWcOpcode.RdmaRead, cqe.Opcode);
            Assert.True(local.Bytes.Slice(7288, 5000).SequenceEqual(remote.Bytes[..5000]));
            Assert.True(local.Bytes[..7288].SequenceEqual(remote.Bytes.Slice(5000, 7288)));
        });
    }

    [Fact]
    public void Send_with_immediate_lands_in_the_posted_receive_and_both_sides_complete()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 10_000, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x30_0000, 16_384, RnicAccessFlags.LocalWrite);
            Fill(src.Bytes, 11);
            RawNic.PostRecv(qb, new RnicRecvWqe(77, 2, new RnicSge(dst.Iova, 4000, dst.Key), new RnicSge(dst.Iova + 8192, 8000, dst.Key)));
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.SendWithImm, RnicSendFlags.Signaled | RnicSendFlags.Solicited, 1,
                0xBEEF, 5, 0, 0, Sge0: new RnicSge(src.Iova, 10_000, src.Key)));
            var sent = m.NicA.WaitCqe(qa);
            var received = m.NicB.WaitCqe(qb);
            Assert.Equal((RnicWcStatus.Success, RnicWcOpcode.Send), (sent.Status, sent.Opcode));
            Assert.Equal((RnicWcStatus.Success, RnicWcOpcode.Recv, 77UL), (received.Status, received.Opcode, received.WrId));
            Assert.Equal(10_000u, received.ByteLen);
            Assert.Equal(0xBEEFu, received.Imm);
            Assert.Equal(qa.Qpn, received.SrcQp);
            Assert.Equal(RnicWcFlags.WithImm | RnicWcFlags.Solicited, received.Flags);
            Assert.True(dst.Bytes[..4000].SequenceEqual(src.Bytes[..4000]));
            Assert.True(dst.Bytes.Slice(8192, 6000).SequenceEqual(src.Bytes.Slice(4000, 6000)));
        });
    }

    [Fact]
    public void Atomics_run_once_and_return_the_original_value()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var local = m.NicA.RegMr(qa.Pd, 0x10_0000, 4096, RnicAccessFlags.LocalWrite);
            var remote = m.NicB.RegMr(qb.Pd, 0x40_0000, 4096, AllRemote);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(remote.Bytes[8..], 1000);
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.AtomicFetchAndAdd, RnicSendFlags.Signaled, 1, 0, 1, remote.Iova + 8,
                remote.Key, CompareAdd: 5, Sge0: new RnicSge(local.Iova, 8, local.Key)));
            Assert.Equal(RnicWcStatus.Success, m.NicA.WaitCqe(qa).Status);
            Assert.Equal(1000UL, RawNic.ReadU64(local, 0));
            Assert.Equal(1005UL, RawNic.ReadU64(remote, 8));
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.AtomicCmpAndSwp, RnicSendFlags.Signaled, 1, 0, 2, remote.Iova + 8,
                remote.Key, CompareAdd: 1005, Swap: 77, Sge0: new RnicSge(local.Iova + 16, 8, local.Key)));
            var cqe = m.NicA.WaitCqe(qa);
            Assert.Equal((RnicWcStatus.Success, RnicWcOpcode.CompSwap), (cqe.Status, cqe.Opcode));
            Assert.Equal(1005UL, RawNic.ReadU64(local, 16));
            Assert.Equal(77UL, RawNic.ReadU64(remote, 8));
        });
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(3UL)]
    public void A_lossy_duplicating_reordering_link_still_delivers_writes_and_reads_intact(ulong seed)
    {
        var link = new RnicLinkOptions { LossProbability = 0.05, DuplicateProbability = 0.05, ReorderProbability = 0.05 };
        using var m = RnicTestMachine.Create(seed: seed, link: link);
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair(timeout: 4);
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 1 << 20, AllRemote);
            var dst = m.NicB.RegMr(qb.Pd, 0x7000_0000, 1 << 20, AllRemote);
            Fill(src.Bytes, (int)seed);
            RawNic.PostSend(qa, Write(1, src, 0, 1 << 19, dst, 0));
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.RdmaRead, RnicSendFlags.Signaled, 1, 0, 2, dst.Iova, dst.Key,
                Sge0: new RnicSge(src.Iova + (1 << 19), 1 << 19, src.Key)));
            var first = m.NicA.WaitCqe(qa);
            var second = m.NicA.WaitCqe(qa);
            Assert.Equal((RnicWcStatus.Success, 1UL), (first.Status, first.WrId));
            Assert.Equal((RnicWcStatus.Success, 2UL), (second.Status, second.WrId));
            Assert.True(dst.Bytes[..(1 << 19)].SequenceEqual(src.Bytes[..(1 << 19)]));
            // The READ copied B's first half (which the WRITE filled from A's first half) into A's second half.
            Assert.True(src.Bytes[(1 << 19)..].SequenceEqual(src.Bytes[..(1 << 19)]));
            Assert.True(m.Link.Stats.Dropped > 0);
            Assert.True(m.A.Stats.Retransmissions > 0);
        });
    }
}
