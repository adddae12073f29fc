using HmmEmu.Kernel;
using HmmEmu.Rnic.Driver;

namespace HmmEmu.Rnic.Tests;

// The verbs API's answers to bad input: the kernel's errno for expected failures, an exception naming the rule for
// misuse, and nothing lost.
public sealed class RnicVerbsTests
{
    [Fact]
    public void Post_send_on_a_full_send_queue_returns_enomem_and_frees_slots_as_completions_are_polled()
    {
        using var machine = RnicMachine.Create();
        machine.Run(m =>
        {
            var pair = m.Connect(depth: 4);
            ulong buf = RnicMachine.Map(m.A, 4096), dst = RnicMachine.Map(m.B, 4096);
            RnicMachine.Check(m.Ca.RegMr(pair.PdA, buf, 4096, RnicAccessFlags.LocalWrite, out var mr));
            RnicMachine.Check(m.Cb.RegMr(pair.PdB, dst, 4096, RnicScenarios.Remote, out var mrB));
            var wr = new IbvSendWr(1, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled, [new RnicSge(buf, 64, mr!.Lkey)], dst, mrB!.Rkey);
            for (int i = 0; i < 4; i++)
                Assert.Equal(Errno.Ok, m.Ca.PostSend(pair.QpA, wr with { WrId = (ulong)i }));
            Assert.Equal(Errno.ENOMEM, m.Ca.PostSend(pair.QpA, wr with { WrId = 99 }));
            for (int i = 0; i < 4; i++)
                Assert.Equal((ulong)i, m.WaitCompletion(m.Ca, pair.CqA).WrId);
            Assert.Equal(Errno.Ok, m.Ca.PostSend(pair.QpA, wr with { WrId = 5 }));
            Assert.Equal(5UL, m.WaitCompletion(m.Ca, pair.CqA).WrId);
            Assert.Equal(Errno.EINVAL, m.Ca.PostSend(pair.QpA, wr with { Sges = new RnicSge[5] }));
            Assert.Equal(Errno.EINVAL, m.Ca.PostRecv(pair.QpA, new IbvRecvWr(1, new RnicSge[4])));
        });
    }

    [Fact]
    public void Control_verbs_return_the_kernel_errno_for_expected_failures()
    {
        using var machine = RnicMachine.Create();
        machine.Run(m =>
        {
            RnicMachine.Check(m.Ca.AllocPd(out var pd));
            RnicMachine.Check(m.Ca.CreateCq(16, out var cq));
            RnicMachine.Check(m.Ca.CreateQp(pd!, new IbvQpInitAttr(cq!, cq!, 8, 8), out var qp));
            // RESET → RTS is not in the state table; INIT without its required attributes is refused.
            Assert.Equal(Errno.EINVAL, m.Ca.ModifyQp(qp!, new RnicQpAttributes(State: RnicQpState.Rts), RnicQpAttrMask.State));
            Assert.Equal(Errno.EINVAL, m.Ca.ModifyQp(qp!, new RnicQpAttributes(State: RnicQpState.Init), RnicQpAttrMask.State));
            RnicMachine.Check(m.Ca.QueryQp(qp!, out var attrs));
            Assert.Equal(RnicQpState.Reset, attrs.State);
            // Posting to a QP in RESET is refused by the library (the device would drop the doorbell).
            Assert.Equal(Errno.EINVAL, m.Ca.PostSend(qp!, new IbvSendWr(1, RnicWrOpcode.Send, RnicSendFlags.Signaled, [])));
            Assert.Equal(Errno.EINVAL, m.Ca.PostRecv(qp!, new IbvRecvWr(1, [])));
            // Objects in use cannot go.
            Assert.Equal(Errno.EBUSY, m.Ca.DeallocPd(pd!));
            Assert.Equal(Errno.EBUSY, m.Ca.DestroyCq(cq!));
            // Bad regions.
            ulong buf = RnicMachine.Map(m.A, 8192);
            Assert.Equal(Errno.EINVAL, m.Ca.RegMr(pd!, buf, 0, RnicAccessFlags.LocalWrite, out _));
            Assert.Equal(Errno.EINVAL, m.Ca.RegMr(pd!, buf, 4096, RnicAccessFlags.RemoteWrite, out _));
            Assert.Equal(Errno.EFAULT, m.Ca.RegMr(pd!, buf + (1 << 20), 4096, RnicAccessFlags.LocalWrite, out _));
            Assert.Equal(Errno.EINVAL, m.Ca.CreateCq(0, out _));
            // Teardown in order works, and leaves the device's tables empty again.
            RnicMachine.Check(m.Ca.DestroyQp(qp!));
            RnicMachine.Check(m.Ca.DestroyCq(cq!));
            RnicMachine.Check(m.Ca.DeallocPd(pd!));
            Assert.Equal(0, m.Driver.Devices[0].FaultErrors);
        });
    }

    [Fact]
    public void Using_an_object_of_another_context_throws_naming_the_rule()
    {
        using var machine = RnicMachine.Create();
        machine.Run(m =>
        {
            RnicMachine.Check(m.Cb.AllocPd(out var foreign));
            var e = Assert.Throws<ArgumentException>(() => m.Ca.DeallocPd(foreign!));
            Assert.Contains("another verbs context", e.Message, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void Deregistering_the_target_of_a_write_stream_stops_the_writes_without_touching_the_freed_pages()
    {
        using var machine = RnicMachine.Create();
        machine.Run(m =>
        {
            var pair = m.Connect();
            const int Writes = 32;
            ulong src = RnicMachine.Map(m.A, 4096), dst = RnicMachine.Map(m.B, Writes * 4096UL);
            RnicMachine.Fill(m.A, src, 4096, 3);
            RnicMachine.Check(m.Ca.RegMr(pair.PdA, src, 4096, RnicAccessFlags.LocalWrite, out var mrA));
            RnicMachine.Check(m.Cb.RegMr(pair.PdB, dst, Writes * 4096UL, RnicScenarios.Remote, out var mrB));
            for (int i = 0; i < Writes; i++)
            {
                RnicMachine.Check(m.Ca.PostSend(pair.QpA, new IbvSendWr((ulong)i, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled,
                    [new RnicSge(src, 4096, mrA!.Lkey)], dst + ((ulong)i * 4096), mrB!.Rkey)));
            }
            Assert.Equal(RnicWcStatus.Success, m.WaitCompletion(m.Ca, pair.CqA).Status);
            RnicMachine.Check(m.Cb.DeregMr(mrB!));
            // The pages are unpinned now; zero them through the CPU and make sure no late WRITE lands.
            m.B.WriteBytes(dst, new byte[Writes * 4096]);
            int success = 1, errors = 0;
            for (int i = 1; i < Writes; i++)
            {
                var c = m.WaitCompletion(m.Ca, pair.CqA);
                if (c.Status == RnicWcStatus.Success)
                {
                    Assert.Equal(0, errors);
                    success++;
                }
                else
                {
                    Assert.True(c.Status is RnicWcStatus.RemAccessErr or RnicWcStatus.WrFlushErr, c.Status.ToString());
                    errors++;
                }
            }
            Assert.True(errors > 0, "WRITEs after the deregistration must fail");
            m.Scheduler.Sleep(100_000);
            Assert.All(RnicMachine.Read(m.B, dst, Writes * 4096), b => Assert.Equal(0, b));
        });
    }
}
