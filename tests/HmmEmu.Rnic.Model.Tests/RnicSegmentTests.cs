using HmmEmu.Hardware.Translation;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using HmmEmu.Simulation;
using static HmmEmu.Rnic.Model.Tests.RnicTestData;

namespace HmmEmu.Rnic.Model.Tests;

/// <summary>
/// Zero-copy segments (threaded mode, clean link): runs of SEND/WRITE packets handed over as one object with the payload
/// left in the sender's frames, consumed by the far responder (inline on the sender's thread when it is idle).
/// </summary>
public sealed class RnicSegmentTests
{
    [Fact]
    public void A_threaded_write_travels_in_segments_and_lands_byte_for_byte_inside_its_range_only()
    {
        using var m = RnicTestMachine.Create(SchedulerMode.Threaded);
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            const uint length = (1 << 20) + 1000;           // 257 packets; the source starts mid-page
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, (1 << 20) + 8192, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x7000_0000, (1 << 20) + 3 * 4096, AllRemote);
            Fill(src.Bytes, 3);
            dst.Bytes.Fill(0xEE);                           // guard bytes around the target range
            RawNic.PostSend(qa, Write(1, src, 100, length, dst, 4096));
            var cqe = m.NicA.WaitCqe(qa);

            Assert.Equal(RnicWcStatus.Success, cqe.Status);
            Assert.True(dst.Bytes.Slice(4096, (int)length).SequenceEqual(src.Bytes.Slice(100, (int)length)));
            Assert.Equal(-1, dst.Bytes[..4096].IndexOfAnyExcept((byte)0xEE));
            Assert.Equal(-1, dst.Bytes[(4096 + (int)length)..].IndexOfAnyExcept((byte)0xEE));
            var a = m.A.Stats;
            Assert.True(a.SegmentsSent >= 2, $"{a.SegmentsSent} segments");       // 257 packets, 128 in flight at most
            Assert.True(a.PacketsSent >= 257, $"{a.PacketsSent} packets");     // a segment counts its packets
            WaitAllReleased(m);                             // every segment released its use
        });
    }

    [Fact]
    public void Deterministic_mode_never_builds_a_segment()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 64 * 4096, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x7000_0000, 64 * 4096, AllRemote);
            Fill(src.Bytes, 4);
            RawNic.PostSend(qa, Write(1, src, 0, 64 * 4096, dst, 0));
            Assert.Equal(RnicWcStatus.Success, m.NicA.WaitCqe(qa).Status);
            Assert.True(dst.Bytes.SequenceEqual(src.Bytes));
            Assert.Equal(0L, m.A.Stats.SegmentsSent);
            Assert.Equal(64L, m.A.Stats.PacketsSent);
        });
    }

    [Fact]
    public void A_threaded_multi_packet_send_in_segments_fills_the_receive_sges()
    {
        using var m = RnicTestMachine.Create(SchedulerMode.Threaded);
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            const int length = 40_000;                      // 10 packets
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, length, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x30_0000, 12 * 4096, RnicAccessFlags.LocalWrite);
            Fill(src.Bytes, 6);
            RawNic.PostRecv(qb, new RnicRecvWqe(5, 2, new RnicSge(dst.Iova, 10_000, dst.Key),
                new RnicSge(dst.Iova + 16_384, 30_000, dst.Key)));
            RawNic.PostSend(qa, new RnicSendWqe(RnicWrOpcode.Send, RnicSendFlags.Signaled, 1, 0, 9, 0, 0,
                Sge0: new RnicSge(src.Iova, length, src.Key)));

            Assert.Equal(RnicWcStatus.Success, m.NicA.WaitCqe(qa).Status);
            var received = m.NicB.WaitCqe(qb);
            Assert.Equal((RnicWcStatus.Success, 5UL, (uint)length), (received.Status, received.WrId, received.ByteLen));
            Assert.True(dst.Bytes[..10_000].SequenceEqual(src.Bytes[..10_000]));
            Assert.True(dst.Bytes.Slice(16_384, 30_000).SequenceEqual(src.Bytes[10_000..]));
            Assert.True(m.A.Stats.SegmentsSent >= 1);
        });
    }

    [Fact]
    public void A_responder_fault_inside_a_segment_places_the_pages_before_it_and_the_rest_after_resume()
    {
        using var m = RnicTestMachine.Create(SchedulerMode.Threaded);
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 16 * 4096, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x5000_0000, 16 * 4096, AllRemote, onDemand: true);
            RawNic.FillMtt(dst, 0, 5);                      // pages 0-4 present, 5-15 fault
            Fill(src.Bytes, 8);
            RawNic.PostSend(qa, Write(2, src, 0, 16 * 4096, dst, 0));

            var fault = m.NicB.WaitEvent(RnicEventType.PageFault);
            Assert.Equal((RnicFaultSide.Responder, dst.Iova + (5 * 4096)), (fault.Side, fault.Address));
            Assert.True(dst.Bytes[..(5 * 4096)].SequenceEqual(src.Bytes[..(5 * 4096)]));
            Assert.Null(RawNic.Poll(qa));
            RawNic.FillMtt(dst, 5, 11);
            m.NicB.ExecuteOk(RnicCommand.Resume(0, qb.Qpn, RnicFaultSide.Responder, error: false));

            Assert.Equal(RnicWcStatus.Success, m.NicA.WaitCqe(qa).Status);
            Assert.True(dst.Bytes.SequenceEqual(src.Bytes));
            Assert.True(m.A.Stats.SegmentsSent >= 1);
            Assert.True(m.B.Stats.RnrNaksSent >= 1);
            Assert.Equal(1L, m.B.Stats.ResponderFaults);
            WaitAllReleased(m);
        });
    }

    [Fact]
    public void A_source_page_outside_ram_ends_the_threaded_write_with_loc_prot_err_not_with_made_up_bytes()
    {
        using var m = RnicTestMachine.Create(SchedulerMode.Threaded);
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 8 * 4096, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x7000_0000, 8 * 4096, AllRemote);
            Fill(src.Bytes, 2);
            // A driver bug: entry 5 names a frame far beyond RAM. The translation succeeds; the DMA read must not.
            RnicMttEntry.Create(1UL << 40, writable: false).Write(src.Mtt.Span.Slice(5 * RnicMttEntry.Size, RnicMttEntry.Size));
            RawNic.PostSend(qa, Write(3, src, 0, 8 * 4096, dst, 0));

            Assert.Equal(RnicWcStatus.LocProtErr, m.NicA.WaitCqe(qa).Status);
            Assert.True(m.A.Stats.SegmentsSent >= 1);       // pages 0-4 went as a segment
            Assert.Equal(-1, dst.Bytes[(5 * 4096)..].IndexOfAnyExcept((byte)0));
            WaitAllReleased(m);
        });
    }

    [Fact]
    public void Invalidating_a_source_page_waits_until_the_segment_that_reads_it_is_released()
    {
        using var m = RnicTestMachine.Create(SchedulerMode.Threaded);
        m.Run(() =>
        {
            m.Start();
            var (qa, _) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 2 * 4096, RnicAccessFlags.LocalWrite, onDemand: true);
            RawNic.FillMtt(src, 0, 2);
            Fill(src.Bytes, 1);
            var segment = Gather(m, src, 2);
            int status = -1;
            var invalidate = m.Scheduler.Spawn("invalidate", () =>
                status = (int)m.NicA.Execute(RnicCommand.InvalidateMtt(0, new RnicKey(src.Key), 0, 2)).Status);

            Thread.Sleep(100);                              // ample time for an invalidation that does not wait
            Assert.Equal(-1, Volatile.Read(ref status));
            var payload = segment.Expand();                 // reads the frames, then releases the use
            invalidate.Join();

            Assert.Equal((int)RnicCommandStatus.Ok, status);
            Assert.True(payload[0].Payload.AsSpan().SequenceEqual(src.Bytes[..4096]));
            Assert.True(payload[1].Payload.AsSpan().SequenceEqual(src.Bytes[4096..]));
            Assert.Equal(0, m.A.Translation.Tlb.ActiveUses);
            Assert.Equal(0, m.A.SegmentsInFlight);
        });
    }

    [Fact]
    public void A_segment_the_link_cannot_hand_over_goes_as_its_packets_and_releases_its_use()
    {
        using var m = RnicTestMachine.Create(SchedulerMode.Threaded,
            link: new RnicLinkOptions { LossProbability = 1.0 });
        m.Run(() =>
        {
            m.Start();
            var (qa, _) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 3 * 4096, RnicAccessFlags.LocalWrite);
            Assert.False(m.Link.CarriesSegments(m.A));      // a lossy link never carries segments
            var segment = Gather(m, src, 3);
            long sent = m.Link.Stats.Sent;

            m.Link.Send(m.A, new RnicPacket(segment));

            Assert.True(segment.Released);
            Assert.Equal(sent + 3, m.Link.Stats.Sent);
            Assert.Equal(3L, m.Link.Stats.Dropped);
            Assert.Equal(0, m.A.Translation.Tlb.ActiveUses);
        });
    }

    [Fact]
    public void A_source_extent_across_a_2_MiB_block_of_ram_is_read_whole()
    {
        using var m = RnicTestMachine.Create();
        m.Run(() =>
        {
            m.Start();
            // 4 MiB naturally aligned: frames 511 and 512 of it are adjacent but lie in two 2 MiB blocks of RAM.
            Assert.Equal(Errno.Ok, m.Kernel.Memory.AllocContiguous(10, Gfp.Kernel, out ulong first));
            ulong pfn = first + 511;
            Fill(m.Kernel.Memory.PageBytes(pfn), 1);
            Fill(m.Kernel.Memory.PageBytes(pfn + 1), 2);
            var storage = m.A.RentSegmentStorage();
            (storage.ExtentAddress[0], storage.ExtentLength[0]) = ((pfn << 12) + 100, 8000);   // one extent, 8000 bytes
            storage.Headers[0] = new RnicPacketHeader(RnicPacketOpcode.RdmaWriteMiddle, RnicPacketFlags.None, 1, 0, 2,
                PayloadLength: 4000);
            storage.Headers[1] = storage.Headers[0] with { Psn = 1 };
            var segment = new RnicSegment(m.A, m.A.Translation.BeginUse(), storage, 2, 1);

            var packets = segment.Expand();

            var expected = new byte[8192];
            m.Kernel.Memory.PageBytes(pfn).CopyTo(expected);
            m.Kernel.Memory.PageBytes(pfn + 1).CopyTo(expected.AsSpan(4096));
            Assert.True(packets[0].Payload.AsSpan().SequenceEqual(expected.AsSpan(100, 4000)));
            Assert.True(packets[1].Payload.AsSpan().SequenceEqual(expected.AsSpan(4100, 4000)));
            Assert.Equal(0, m.A.SegmentsInFlight);
        });
    }

    [Fact]
    public void A_threaded_write_between_frames_that_run_across_2_MiB_blocks_of_ram_lands_intact()
    {
        using var m = RnicTestMachine.Create(SchedulerMode.Threaded);
        m.Run(() =>
        {
            m.Start();
            var (qa, qb) = m.ConnectedPair();
            var src = m.NicA.RegMr(qa.Pd, 0x10_0000, 4 * 4096, RnicAccessFlags.LocalWrite);
            var dst = m.NicB.RegMr(qb.Pd, 0x7000_0000, 4 * 4096, AllRemote);
            // Point both MTTs at frames 510-513 of a 4 MiB run: physically contiguous, but in two 2 MiB blocks of RAM,
            // so the source extent and the destination run each need two spans.
            ulong srcFrame = Frames(m) + 510, dstFrame = Frames(m) + 510;
            for (int i = 0; i < 4; i++)
            {
                RnicMttEntry.Create((srcFrame + (ulong)i) << 12, writable: true).Write(src.Mtt.Span.Slice(i * 8, 8));
                RnicMttEntry.Create((dstFrame + (ulong)i) << 12, writable: true).Write(dst.Mtt.Span.Slice(i * 8, 8));
                Fill(m.Kernel.Memory.PageBytes(srcFrame + (ulong)i), i);
            }
            RawNic.PostSend(qa, Write(4, src, 100, (4 * 4096) - 200, dst, 100));

            Assert.Equal(RnicWcStatus.Success, m.NicA.WaitCqe(qa).Status);
            Assert.True(m.A.Stats.SegmentsSent >= 1);
            for (int i = 0; i < 4; i++)
            {
                var sent = m.Kernel.Memory.PageBytes(srcFrame + (ulong)i);
                var landed = m.Kernel.Memory.PageBytes(dstFrame + (ulong)i);
                int from = i == 0 ? 100 : 0, to = i == 3 ? 4096 - 100 : 4096;
                Assert.True(landed[from..to].SequenceEqual(sent[from..to]), $"page {i}");
                Assert.Equal(-1, landed[..from].IndexOfAnyExcept((byte)0));
                Assert.Equal(-1, landed[to..].IndexOfAnyExcept((byte)0));
            }
        });

        static ulong Frames(RnicTestMachine m)
        {
            Assert.Equal(Errno.Ok, m.Kernel.Memory.AllocContiguous(10, Gfp.Kernel | Gfp.Zero, out ulong first));
            return first;
        }
    }

    // The CQE can come before the segment that carried the last bytes is released (the responder releases it after its
    // ACK has completed the WQE), so wait for the release instead of expecting it at once.
    private static void WaitAllReleased(RnicTestMachine m) =>
        m.WaitFor(() => m.A.SegmentsInFlight == 0 && m.A.Translation.Tlb.ActiveUses == 0, "every segment released");

    // A segment of `pages` WRITE packets over the first pages of `src`, gathered as the requester does (one use, kept).
    private static RnicSegment Gather(RnicTestMachine m, RawMr src, int pages)
    {
        var mr = m.A.FindMr(src.Key)!;
        var use = m.A.Translation.BeginUse();
        var storage = m.A.RentSegmentStorage();
        for (int i = 0; i < pages; i++)
        {
            var t = m.A.Translation.Translate(use, mr.CacheId, src.Iova + ((ulong)i * 4096), Access.Read);
            Assert.True(t.IsOk, $"page {i}: {t.Status}");
            (storage.ExtentAddress[i], storage.ExtentLength[i]) = (t.Address, 4096);
            storage.Headers[i] = new RnicPacketHeader(RnicPacketOpcode.RdmaWriteMiddle, RnicPacketFlags.None, 1, (uint)i, 2,
                PayloadLength: 4096);
        }
        return new RnicSegment(m.A, use, storage, pages, pages);
    }
}
