using static HmmEmu.Rnic.Model.Tests.RnicTestData;

namespace HmmEmu.Rnic.Model.Tests;

public sealed class RnicOdpTests
{
    [Fact]
    public void Odp_mr_starts_with_every_mtt_entry_invalid()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var pd = m.NicB.AllocPd();
            var data = m.NicB.Alloc(8 * 4096);
            var mtt = m.NicB.Alloc(4096);
            RawNic.FillMtt(mtt, data, 0, 8);       // garbage the device must clear
            var done = m.NicB.ExecuteOk(RnicCommand.RegMr(0, pd, 0x1000, 8 * 4096, AllRemote | RnicAccessFlags.OnDemand,
                mtt.BusAddress, 8, onDemand: true));
            Assert.NotEqual(0u, done.Key);
            for (int i = 0; i < 8; i++)
                Assert.False(RnicMttEntry.Read(mtt.Span.Slice(i * 8, 8)).IsValid);
        });
    }

    [Fact]
    public void Responder_fault_answers_rnr_until_resume_then_the_write_lands()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 16_384, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x5000_0000, 16_384, AllRemote, onDemand: true);
            Fill(src.Bytes, 5, stride: 13);
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, 1, 0, 8, dst.Iova + 4096, dst.Key,
                Sge0: new RnicSge(src.Iova, 8192, src.Key)));
            var fault = m.NicB.WaitEvent(RnicEventType.PageFault);
            Assert.Equal(RnicFaultSide.Responder, fault.Side);
            Assert.Equal(RnicFaultAccess.Write, fault.Access);
            Assert.Equal(qb.Qpn, fault.ObjectNumber);
            Assert.Equal(dst.Key, fault.Key);
            Assert.Equal(dst.Iova + 4096, fault.Address);
            Assert.Equal(8192u, fault.Length);
            // While the fault is pending the responder keeps answering RNR NAK and the requester keeps retrying.
            long before = m.B.Stats.RnrNaksSent;
            m.Scheduler.Sleep(200_000);
            Assert.True(m.B.Stats.RnrNaksSent > before);
            Assert.Null(RawNic.Poll(qa));
            Assert.True(dst.Bytes.Slice(4096, 8192).IndexOfAnyExcept((byte)0) < 0);
            var pending = Assert.Single(m.B.PendingFaults());
            Assert.Equal((qb.Qpn, RnicFaultSide.Responder), (pending.Qp, pending.Side));
            RawNic.FillMtt(dst, 1, 2);
            m.NicB.ExecuteOk(RnicCommand.Resume(0, qb.Qpn, RnicFaultSide.Responder, error: false));
            Assert.Empty(m.B.PendingFaults());
            var cqe = m.NicA.WaitCqe(qa);
            Assert.Equal(RnicWcStatus.Success, cqe.Status);
            Assert.True(dst.Bytes.Slice(4096, 8192).SequenceEqual(src.Bytes[..8192]));
            Assert.Equal(1L, m.B.Stats.ResponderFaults);
        });
    }

    [Fact]
    public void Requester_fault_pauses_the_send_side_until_resume()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 8192, RnicAccessFlags.LocalWrite, onDemand: true);
            var dst = m.NicB.RegMr(qb.Pd, 0x5000_0000, 8192, AllRemote);
            Fill(src.Bytes, 9, stride: 13);
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, 1, 0, 3, dst.Iova, dst.Key,
                Sge0: new RnicSge(src.Iova, 8192, src.Key)));
            var fault = m.NicA.WaitEvent(RnicEventType.PageFault);
            Assert.Equal((RnicFaultSide.Requester, RnicFaultAccess.Read), (fault.Side, fault.Access));
            Assert.Equal((qa.Qpn, 0u, src.Key), (fault.ObjectNumber, fault.WqeIndex, fault.Key));
            Assert.Equal((src.Iova, 8192u), (fault.Address, fault.Length));
            var query = m.NicA.ExecuteOk(RnicCommand.QueryQp(0, qa.Qpn, m.NicA.Scratch.BusAddress));
            Assert.Equal(RnicCommandCompletion.QpRequesterFaultPending, query.Out1);
            // Only the first page: the requester faults again on the second.
            RawNic.FillMtt(src, 0, 1, writable: false);
            m.NicA.ExecuteOk(RnicCommand.Resume(0, qa.Qpn, RnicFaultSide.Requester, error: false));
            var again = m.NicA.WaitEvent(RnicEventType.PageFault);
            Assert.Equal(src.Iova + 4096, again.Address);
            RawNic.FillMtt(src, 1, 1, writable: false);
            m.NicA.ExecuteOk(RnicCommand.Resume(0, qa.Qpn, RnicFaultSide.Requester, error: false));
            Assert.Equal(RnicWcStatus.Success, m.NicA.WaitCqe(qa).Status);
            Assert.True(dst.Bytes.SequenceEqual(src.Bytes));
            Assert.Equal(RnicCommandStatus.NotPending,
                m.NicA.Execute(RnicCommand.Resume(0, qa.Qpn, RnicFaultSide.Requester, error: false)).Status);
        });
    }

    [Fact]
    public void Read_response_into_a_read_only_odp_page_faults_for_write_and_rereads_after_resume()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var local = m.NicA.RegMr(qa.Pd, 0x10_0000, 8192, RnicAccessFlags.LocalWrite, onDemand: true);
            var remote = m.NicB.RegMr(qb.Pd, 0x5000_0000, 8192, AllRemote);
            Fill(remote.Bytes, 1, stride: 13);
            RawNic.FillMtt(local, 0, 2, writable: false);
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.RdmaRead, RnicSendFlags.Signaled, 1, 0, 4, remote.Iova, remote.Key,
                Sge0: new RnicSge(local.Iova, 8192, local.Key)));
            var fault = m.NicA.WaitEvent(RnicEventType.PageFault);
            Assert.Equal((RnicFaultSide.Requester, RnicFaultAccess.Write), (fault.Side, fault.Access));
            // Upgrading in place (read-only to writable) needs no INVALIDATE_MTT: the device dropped the read-only entry.
            RawNic.FillMtt(local, 0, 2, writable: true);
            m.NicA.ExecuteOk(RnicCommand.Resume(0, qa.Qpn, RnicFaultSide.Requester, error: false));
            Assert.Equal(RnicWcStatus.Success, m.NicA.WaitCqe(qa).Status);
            Assert.True(local.Bytes.SequenceEqual(remote.Bytes));
        });
    }

    [Fact]
    public void Responder_resume_with_error_ends_the_requester_with_remote_access_error_and_flushes_the_rest()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 4096 * 4, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x5000_0000, 4096 * 4, AllRemote, onDemand: true);
            for (int i = 0; i < 3; i++)
            {
                RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, 1, 0, (ulong)(10 + i),
                    dst.Iova + ((ulong)i * 4096), dst.Key, Sge0: new RnicSge(src.Iova, 4096, src.Key)));
            }
            m.NicB.WaitEvent(RnicEventType.PageFault);
            m.NicB.ExecuteOk(RnicCommand.Resume(0, qb.Qpn, RnicFaultSide.Responder, error: true));
            var first = m.NicA.WaitCqe(qa);
            Assert.Equal((RnicWcStatus.RemAccessErr, 10UL), (first.Status, first.WrId));
            Assert.Equal((RnicWcStatus.WrFlushErr, 11UL), (m.NicA.WaitCqe(qa).Status, 11UL));
            Assert.Equal(RnicWcStatus.WrFlushErr, m.NicA.WaitCqe(qa).Status);
            Assert.Equal(RnicQpState.Err, m.NicA.QueryState(qa.Qpn));
            Assert.Equal(RnicQpState.Err, m.NicB.QueryState(qb.Qpn));
            Assert.Equal(RnicEventType.QpAccessErr, m.NicB.WaitEvent(RnicEventType.QpAccessErr).Type);
            // Posting to a QP in ERR flushes at once.
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.RdmaWrite, RnicSendFlags.None, 1, 0, 99, dst.Iova, dst.Key,
                Sge0: new RnicSge(src.Iova, 16, src.Key)));
            var flushed = m.NicA.WaitCqe(qa);
            Assert.Equal((RnicWcStatus.WrFlushErr, 99UL), (flushed.Status, flushed.WrId));
        });
    }

    [Fact]
    public void Invalidate_mtt_waits_for_dma_in_flight_and_the_next_access_faults_again()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 8192, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x5000_0000, 8192, AllRemote, onDemand: true);
            RawNic.FillMtt(dst, 0, 2);
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, 1, 0, 1, dst.Iova, dst.Key,
                Sge0: new RnicSge(src.Iova, 8192, src.Key)));
            Assert.Equal(RnicWcStatus.Success, m.NicA.WaitCqe(qa).Status);
            Assert.Equal(0L, m.B.Stats.ResponderFaults);
            m.NicB.ExecuteOk(RnicCommand.InvalidateMtt(0, new RnicKey(dst.Key), 0, 2));
            Assert.False(RnicMttEntry.Read(dst.Mtt.Span[..8]).IsValid);
            Assert.Equal(0, m.B.Translation.Tlb.Count);
            Assert.Equal(0, m.B.Translation.Tlb.ActiveUses);
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, 1, 0, 2, dst.Iova, dst.Key,
                Sge0: new RnicSge(src.Iova, 100, src.Key)));
            m.NicB.WaitEvent(RnicEventType.PageFault);
            RawNic.FillMtt(dst, 0, 1);
            m.NicB.ExecuteOk(RnicCommand.Resume(0, qb.Qpn, RnicFaultSide.Responder, error: false));
            Assert.Equal(RnicWcStatus.Success, m.NicA.WaitCqe(qa).Status);
            // A pinned MR refuses INVALIDATE_MTT.
            Assert.Equal(RnicCommandStatus.BadState, m.NicA.Execute(RnicCommand.InvalidateMtt(0, new RnicKey(src.Key), 0, 1)).Status);
        });
    }
}
