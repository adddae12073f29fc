using HmmEmu.Rnic.Driver;
using HmmEmu.Simulation;

namespace HmmEmu.Rnic.Tests;

public sealed class RnicScenarioTests
{
    private const RnicAccessFlags Remote = RnicAccessFlags.LocalWrite | RnicAccessFlags.RemoteWrite |
        RnicAccessFlags.RemoteRead | RnicAccessFlags.RemoteAtomic;

    [Theory]
    [InlineData(false, SchedulerMode.Deterministic)]
    [InlineData(true, SchedulerMode.Deterministic)]
    [InlineData(true, SchedulerMode.Threaded)]
    public void Write_read_send_and_atomics_move_bytes_exactly(bool onDemand, SchedulerMode mode)
    {
        using var machine = RnicMachine.Create(mode);
        machine.Run(m =>
        {
            var pair = m.Connect();
            const int Bytes = 256 * 1024;
            ulong bufA = RnicMachine.Map(m.A, 2 * Bytes), bufB = RnicMachine.Map(m.B, 2 * Bytes);
            RnicMachine.Fill(m.A, bufA, Bytes, 3);
            RnicMachine.Fill(m.B, bufB + Bytes, Bytes, 9);
            var odp = onDemand ? RnicAccessFlags.OnDemand : 0;
            RnicMachine.Check(m.Ca.RegMr(pair.PdA, bufA, 2 * Bytes, Remote | odp, out var mrA));
            RnicMachine.Check(m.Cb.RegMr(pair.PdB, bufB, 2 * Bytes, Remote | odp, out var mrB));

            // WRITE A[0..Bytes) → B[0..Bytes)
            RnicMachine.Check(m.Ca.PostSend(pair.QpA, new IbvSendWr(1, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled,
                [new RnicSge(bufA, Bytes, mrA!.Lkey)], bufB, mrB!.Rkey)));
            Assert.Equal(RnicWcStatus.Success, m.WaitCompletion(m.Ca, pair.CqA).Status);
            Assert.Equal(RnicMachine.Read(m.A, bufA, Bytes), RnicMachine.Read(m.B, bufB, Bytes));

            // READ B[Bytes..2·Bytes) → A[Bytes..2·Bytes)
            RnicMachine.Check(m.Ca.PostSend(pair.QpA, new IbvSendWr(2, RnicWrOpcode.RdmaRead, RnicSendFlags.Signaled,
                [new RnicSge(bufA + Bytes, Bytes, mrA.Lkey)], bufB + Bytes, mrB.Rkey)));
            Assert.Equal(RnicWcStatus.Success, m.WaitCompletion(m.Ca, pair.CqA).Status);
            Assert.Equal(RnicMachine.Read(m.B, bufB + Bytes, Bytes), RnicMachine.Read(m.A, bufA + Bytes, Bytes));

            // SEND 10 000 bytes from A into a receive on B
            RnicMachine.Check(m.Cb.PostRecv(pair.QpB, new IbvRecvWr(7, [new RnicSge(bufB + 4096, 16_384, mrB.Lkey)])));
            RnicMachine.Fill(m.A, bufA, 10_000, 42);
            RnicMachine.Check(m.Ca.PostSend(pair.QpA, new IbvSendWr(3, RnicWrOpcode.Send, RnicSendFlags.Signaled,
                [new RnicSge(bufA, 10_000, mrA.Lkey)])));
            Assert.Equal(RnicWcStatus.Success, m.WaitCompletion(m.Ca, pair.CqA).Status);
            var recv = m.WaitCompletion(m.Cb, pair.CqB);
            Assert.Equal((RnicWcStatus.Success, 7UL, 10_000u), (recv.Status, recv.WrId, recv.ByteLen));
            Assert.Equal(RnicMachine.Read(m.A, bufA, 10_000), RnicMachine.Read(m.B, bufB + 4096, 10_000));

            // FETCH_AND_ADD and CMP_AND_SWP on B's first word
            m.B.WriteBytes(bufB, BitConverter.GetBytes(40UL));
            RnicMachine.Check(m.Ca.PostSend(pair.QpA, new IbvSendWr(4, RnicWrOpcode.AtomicFetchAndAdd, RnicSendFlags.Signaled,
                [new RnicSge(bufA + 64, 8, mrA.Lkey)], bufB, mrB.Rkey, CompareAdd: 2)));
            Assert.Equal(RnicWcStatus.Success, m.WaitCompletion(m.Ca, pair.CqA).Status);
            RnicMachine.Check(m.Ca.PostSend(pair.QpA, new IbvSendWr(5, RnicWrOpcode.AtomicCmpAndSwp, RnicSendFlags.Signaled,
                [new RnicSge(bufA + 72, 8, mrA.Lkey)], bufB, mrB.Rkey, CompareAdd: 42, Swap: 1000)));
            Assert.Equal(RnicWcStatus.Success, m.WaitCompletion(m.Ca, pair.CqA).Status);
            Assert.Equal(40UL, RnicMachine.ReadU64(m.A, bufA + 64));
            Assert.Equal(42UL, RnicMachine.ReadU64(m.A, bufA + 72));
            Assert.Equal(1000UL, RnicMachine.ReadU64(m.B, bufB));
            if (onDemand)
                Assert.True(m.Driver.Devices[0].FaultsHandled + m.Driver.Devices[1].FaultsHandled > 0);
        });
    }
}
