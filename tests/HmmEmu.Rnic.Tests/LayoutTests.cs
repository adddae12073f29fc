using System.Buffers.Binary;

namespace HmmEmu.Rnic.Tests;

/// <summary>
/// Every layout written with distinct values lands each field at the offset docs/rnic.md documents (the offsets here
/// are literals, not the Spec constants, so a wrong constant fails), and reads back equal.
/// </summary>
public sealed class LayoutTests
{
    private static ulong U64(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(b[offset..]);

    private static uint U32(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b[offset..]);

    private static ushort U16(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(b[offset..]);

    [Fact]
    public void Sge_Write_PutsFieldsAtDocumentedOffsets()
    {
        var sge = new RnicSge(0x1122_3344_5566_7788, 0xA0B0C0D0, 0x0000_0105);
        var b = new byte[16];
        sge.Write(b);
        Assert.Equal(0x1122_3344_5566_7788UL, U64(b, 0x00));
        Assert.Equal(0xA0B0C0D0u, U32(b, 0x08));
        Assert.Equal(0x0000_0105u, U32(b, 0x0C));
        Assert.Equal(sge, RnicSge.Read(b));
    }

    [Fact]
    public void SendWqe_Write_PutsFieldsAtDocumentedOffsets()
    {
        var wqe = new RnicSendWqe(RnicWrOpcode.AtomicCmpAndSwp, RnicSendFlags.Signaled | RnicSendFlags.Fence, 4,
            Imm: 0xDEAD_BEEF, WrId: 0x0102_0304_0506_0708, RemoteAddress: 0x7FFF_0000_1000, Rkey: 0x0000_2A17,
            CompareAdd: 0x1111_2222_3333_4444, Swap: 0x5555_6666_7777_8888,
            Sge0: new RnicSge(0xA000, 8, 0x101), Sge1: new RnicSge(0xB000, 16, 0x202),
            Sge2: new RnicSge(0xC000, 32, 0x303), Sge3: new RnicSge(0xD000, 64, 0x404));
        var b = new byte[128];
        b.AsSpan().Fill(0xCC);
        wqe.Write(b);

        Assert.Equal((byte)RnicWrOpcode.AtomicCmpAndSwp, b[0x00]);
        Assert.Equal((byte)(RnicSendFlags.Signaled | RnicSendFlags.Fence), b[0x01]);
        Assert.Equal(4, b[0x02]);
        Assert.Equal(0, b[0x03]);
        Assert.Equal(0xDEAD_BEEFu, U32(b, 0x04));
        Assert.Equal(0x0102_0304_0506_0708UL, U64(b, 0x08));
        Assert.Equal(0x7FFF_0000_1000UL, U64(b, 0x10));
        Assert.Equal(0x2A17u, U32(b, 0x18));
        Assert.Equal(0u, U32(b, 0x1C));
        Assert.Equal(0x1111_2222_3333_4444UL, U64(b, 0x20));
        Assert.Equal(0x5555_6666_7777_8888UL, U64(b, 0x28));
        Assert.All(b[0x30..0x40], x => Assert.Equal(0, x));
        for (int i = 0; i < 4; i++)
        {
            int o = 0x40 + (16 * i);
            Assert.Equal(0xA000UL + (0x1000UL * (ulong)i), U64(b, o));
            Assert.Equal(8u << i, U32(b, o + 8));
            Assert.Equal(0x101u * (uint)(i + 1), U32(b, o + 12));
        }
        Assert.True(RnicSendWqe.ReservedIsZero(b));
        Assert.Equal(wqe, RnicSendWqe.Read(b));
        Assert.Equal(120UL, wqe.TotalLength());
    }

    [Fact]
    public void SendWqe_NonZeroReservedByte_ReservedIsZeroFalse()
    {
        var b = new byte[128];
        new RnicSendWqe(RnicWrOpcode.Send, RnicSendFlags.None, 0, 0, 1, 0, 0).Write(b);
        b[0x35] = 1;
        Assert.False(RnicSendWqe.ReservedIsZero(b));
    }

    [Fact]
    public void RecvWqe_Write_PutsFieldsAtDocumentedOffsets()
    {
        var wqe = new RnicRecvWqe(0xFEED_FACE_CAFE_F00D, 3,
            new RnicSge(0x1000, 100, 0x111), new RnicSge(0x2000, 200, 0x222), new RnicSge(0x3000, 300, 0x333));
        var b = new byte[64];
        b.AsSpan().Fill(0xCC);
        wqe.Write(b);

        Assert.Equal(0xFEED_FACE_CAFE_F00DUL, U64(b, 0x00));
        Assert.Equal(3, b[0x08]);
        Assert.All(b[0x09..0x10], x => Assert.Equal(0, x));
        Assert.Equal(0x1000UL, U64(b, 0x10));
        Assert.Equal(100u, U32(b, 0x18));
        Assert.Equal(0x111u, U32(b, 0x1C));
        Assert.Equal(0x2000UL, U64(b, 0x20));
        Assert.Equal(0x3000UL, U64(b, 0x30));
        Assert.Equal(300u, U32(b, 0x38));
        Assert.Equal(0x333u, U32(b, 0x3C));
        Assert.True(RnicRecvWqe.ReservedIsZero(b));
        Assert.Equal(wqe, RnicRecvWqe.Read(b));
        Assert.Equal(600UL, wqe.TotalLength());
    }

    [Fact]
    public void Cqe_Write_PutsFieldsAtDocumentedOffsets()
    {
        var cqe = new RnicCqe(0x0807_0605_0403_0201, 0x0001_0000, 0xABCD_EF01, 0x00_1234, 0x00_5678,
            RnicWcStatus.RemAccessErr, RnicWcOpcode.RecvRdmaWithImm, RnicWcFlags.WithImm, 0x1FFF, Phase: true);
        var b = new byte[32];
        b.AsSpan().Fill(0xCC);
        cqe.Write(b);

        Assert.Equal(0x0807_0605_0403_0201UL, U64(b, 0x00));
        Assert.Equal(0x0001_0000u, U32(b, 0x08));
        Assert.Equal(0xABCD_EF01u, U32(b, 0x0C));
        Assert.Equal(0x1234u, U32(b, 0x10));
        Assert.Equal(0x5678u, U32(b, 0x14));
        Assert.Equal(10, b[0x18]);
        Assert.Equal(129, b[0x19]);
        Assert.Equal(2, b[0x1A]);
        Assert.Equal(0, b[0x1B]);
        Assert.Equal(0x1FFF, U16(b, 0x1C));
        Assert.Equal(0, b[0x1E]);
        Assert.Equal(1, b[0x1F]);
        Assert.Equal(cqe, RnicCqe.Read(b));
        Assert.True(RnicCqe.HasPhase(b, true));
    }

    [Theory]
    [InlineData(0u, 4u, true)]
    [InlineData(3u, 4u, true)]
    [InlineData(4u, 4u, false)]
    [InlineData(7u, 4u, false)]
    [InlineData(8u, 4u, true)]
    public void Cqe_PhaseFor_FlipsEveryPass(uint index, uint entries, bool expected) =>
        Assert.Equal(expected, RnicCqe.PhaseFor(index, entries));

    [Fact]
    public void Eqe_Write_PutsFieldsAtDocumentedOffsets()
    {
        var eqe = RnicEqe.RequesterFault(0x00_ABCD, 0x0123, 0x0000_0702, 0x7F00_1234_5678, 0x2000, RnicFaultAccess.Write, 42);
        var b = new byte[32];
        b.AsSpan().Fill(0xCC);
        eqe.Write(b);

        Assert.Equal((byte)RnicEventType.PageFault, b[0x00]);
        Assert.Equal((byte)RnicFaultSide.Requester, b[0x01]);
        Assert.Equal((byte)RnicFaultAccess.Write, b[0x02]);
        Assert.Equal(0, b[0x03]);
        Assert.Equal(0xABCDu, U32(b, 0x04));
        Assert.Equal(0x7F00_1234_5678UL, U64(b, 0x08));
        Assert.Equal(0x2000u, U32(b, 0x10));
        Assert.Equal(0x702u, U32(b, 0x14));
        Assert.Equal(0x123u, U32(b, 0x18));
        Assert.Equal(42u, U32(b, 0x1C));
        Assert.Equal(eqe, RnicEqe.Read(b));
    }

    [Fact]
    public void Eqe_QpError_RoundTripsStatus()
    {
        var eqe = new RnicEqe(RnicEventType.QpAccessErr, RnicFaultSide.None, RnicFaultAccess.None, RnicWcStatus.RemAccessErr, 7, 0, 0, 0, 5, 9);
        var b = new byte[32];
        eqe.Write(b);
        Assert.Equal(10, b[0x03]);
        Assert.Equal(eqe, RnicEqe.Read(b));
    }

    [Fact]
    public void Command_Write_PutsFieldsAtDocumentedOffsets()
    {
        var cmd = new RnicCommand(RnicCommandOpcode.CreateQp, RnicCommandFlags.Interrupt, 0xC0FF_EE00,
            0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76);
        var b = new byte[64];
        b.AsSpan().Fill(0xCC);
        cmd.Write(b);

        Assert.Equal(8, b[0x00]);
        Assert.Equal(1, b[0x01]);
        Assert.Equal(0, U16(b, 0x02));
        Assert.Equal(0xC0FF_EE00u, U32(b, 0x04));
        ulong[] args = [0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76];
        for (int i = 0; i < 7; i++)
            Assert.Equal(args[i], U64(b, 0x08 + (8 * i)));
        Assert.True(RnicCommand.ReservedIsZero(b));
        Assert.Equal(cmd, RnicCommand.Read(b));
    }

    [Fact]
    public void Command_Factories_PutArgumentsInDocumentedSlots()
    {
        var reg = RnicCommand.RegMr(1, pdn: 3, iova: 0x1000, length: 0x5000, RnicAccessFlags.LocalWrite | RnicAccessFlags.OnDemand,
            mttAddress: 0x9000, mttEntries: 5, onDemand: true);
        Assert.Equal(RnicCommandOpcode.RegMrOdp, reg.Opcode);
        Assert.Equal([3UL, 0x1000, 0x5000, 0x41, 0x9000, 5, 0], Enumerable.Range(0, 7).Select(reg.Arg));

        var qp = RnicCommand.CreateQp(2, pdn: 1, context: 4, sendCqn: 5, recvCqn: 6, sqAddress: 0xA000, sqEntries: 64, rqAddress: 0xB000, rqEntries: 32);
        Assert.Equal([1UL, 4, 5, 6, 0xA000, 0xB000, (32UL << 32) | 64], Enumerable.Range(0, 7).Select(qp.Arg));

        var resume = RnicCommand.Resume(3, qpn: 9, RnicFaultSide.Responder, error: true);
        Assert.Equal([9UL, 2, 1, 0, 0, 0, 0], Enumerable.Range(0, 7).Select(resume.Arg));

        var zap = RnicCommand.InvalidateMtt(4, RnicKey.Compose(7, 0x11), firstEntry: 2, count: 3);
        Assert.Equal([0x711UL, 2, 3, 0, 0, 0, 0], Enumerable.Range(0, 7).Select(zap.Arg));
    }

    [Fact]
    public void CommandCompletion_Write_PutsFieldsAtDocumentedOffsets()
    {
        var c = new RnicCommandCompletion(RnicCommandOpcode.RegMr, RnicCommandStatus.Busy, 0xBEEF, 0x1234_5678, 0x00_0042, 0x0000_4203,
            0x0102_0304_0506_0708, 0x1112_1314_1516_1718);
        var b = new byte[32];
        c.Write(b);

        Assert.Equal(3, b[0x00]);
        Assert.Equal(8, b[0x01]);
        Assert.Equal(0xBEEF, U16(b, 0x02));
        Assert.Equal(0x1234_5678u, U32(b, 0x04));
        Assert.Equal(0x42u, U32(b, 0x08));
        Assert.Equal(0x4203u, U32(b, 0x0C));
        Assert.Equal(0x0102_0304_0506_0708UL, U64(b, 0x10));
        Assert.Equal(0x1112_1314_1516_1718UL, U64(b, 0x18));
        Assert.Equal(c, RnicCommandCompletion.Read(b));
    }

    [Fact]
    public void QpAttributes_Write_PutsFieldsAtDocumentedOffsets()
    {
        var a = new RnicQpAttributes(RnicQpState.Rts, RnicQpState.Rtr, RnicMtu.Mtu2048, Port: 1, PkeyIndex: 0x0203,
            MinRnrTimer: 12, Timeout: 14, AccessFlags: RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead,
            DestQpn: 0x00_0A0B, RqPsn: 0x00_1111, SqPsn: 0x00_2222, Av: 0x0000_0002, Qkey: 0x8001_0000,
            RetryCnt: 7, RnrRetry: 6, MaxRdAtomic: 4, MaxDestRdAtomic: 5, EnSqdAsyncNotify: true, SqDraining: true);
        var b = new byte[64];
        b.AsSpan().Fill(0xCC);
        a.Write(b);

        Assert.Equal(3, b[0x00]);
        Assert.Equal(2, b[0x01]);
        Assert.Equal(4, b[0x02]);
        Assert.Equal(1, b[0x03]);
        Assert.Equal(0x0203, U16(b, 0x04));
        Assert.Equal(12, b[0x06]);
        Assert.Equal(14, b[0x07]);
        Assert.Equal(6u, U32(b, 0x08));
        Assert.Equal(0xA0Bu, U32(b, 0x0C));
        Assert.Equal(0x1111u, U32(b, 0x10));
        Assert.Equal(0x2222u, U32(b, 0x14));
        Assert.Equal(2u, U32(b, 0x18));
        Assert.Equal(0x8001_0000u, U32(b, 0x1C));
        Assert.Equal(7, b[0x20]);
        Assert.Equal(6, b[0x21]);
        Assert.Equal(4, b[0x22]);
        Assert.Equal(5, b[0x23]);
        Assert.Equal(1, b[0x24]);
        Assert.Equal(1, b[0x25]);
        Assert.All(b[0x26..], x => Assert.Equal(0, x));
        Assert.Equal(a, RnicQpAttributes.Read(b));
    }

    [Fact]
    public void PacketHeader_Write_PutsFieldsAtDocumentedOffsets()
    {
        var h = new RnicPacketHeader(RnicPacketOpcode.CompareSwap, RnicPacketFlags.AckRequest | RnicPacketFlags.Solicited,
            DestQpn: 0x00_0102, Psn: 0x00_FFFF_FE, SrcQpn: 0x00_0304, VirtualAddress: 0x0000_7F00_0000_1008, Rkey: 0x0000_0907,
            DmaLength: 8, Syndrome: RnicAckSyndrome.RnrNak, SyndromeValue: 14, Msn: 0x00_0077, Imm: 0x1357_9BDF,
            PayloadLength: 4096, SwapAdd: 0xAAAA_BBBB_CCCC_DDDD, Compare: 0x1111_2222_3333_4444);
        var b = new byte[64];
        b.AsSpan().Fill(0xCC);
        h.Write(b);

        Assert.Equal(0x13, b[0x00]);
        Assert.Equal(3, b[0x01]);
        Assert.Equal(0, U16(b, 0x02));
        Assert.Equal(0x102u, U32(b, 0x04));
        Assert.Equal(0xFFFF_FEu, U32(b, 0x08));
        Assert.Equal(0x304u, U32(b, 0x0C));
        Assert.Equal(0x0000_7F00_0000_1008UL, U64(b, 0x10));
        Assert.Equal(0x907u, U32(b, 0x18));
        Assert.Equal(8u, U32(b, 0x1C));
        Assert.Equal(1, b[0x20]);
        Assert.Equal(14, b[0x21]);
        Assert.Equal(0, U16(b, 0x22));
        Assert.Equal(0x77u, U32(b, 0x24));
        Assert.Equal(0x1357_9BDFu, U32(b, 0x28));
        Assert.Equal(4096u, U32(b, 0x2C));
        Assert.Equal(0xAAAA_BBBB_CCCC_DDDDUL, U64(b, 0x30));
        Assert.Equal(0x1111_2222_3333_4444UL, U64(b, 0x38));
        Assert.Equal(h, RnicPacketHeader.Read(b));
    }

    [Theory]
    [InlineData(0xFF_FFFFu, 1u, 0u)]
    [InlineData(5u, 3u, 8u)]
    public void PacketHeader_PsnAdd_WrapsAt24Bits(uint psn, uint delta, uint expected) =>
        Assert.Equal(expected, RnicPacketHeader.PsnAdd(psn, delta));

    [Theory]
    [InlineData(0u, 0xFF_FFFFu, 1)]
    [InlineData(0xFF_FFFFu, 0u, -1)]
    [InlineData(10u, 4u, 6)]
    [InlineData(0x80_0000u, 0u, -0x80_0000)]
    public void PacketHeader_PsnDiff_IsSigned24Bit(uint a, uint b, int expected) =>
        Assert.Equal(expected, RnicPacketHeader.PsnDiff(a, b));

    [Fact]
    public void PacketHeader_MaxPayload_FollowsMtuCode()
    {
        Assert.Equal(256, RnicPacketHeader.MaxPayload(RnicMtu.Mtu256));
        Assert.Equal(4096, RnicPacketHeader.MaxPayload(RnicMtu.Mtu4096));
    }

    [Fact]
    public void Read_WrongLength_ThrowsArgumentExceptionNamingSize()
    {
        var ex = Assert.Throws<ArgumentException>(() => RnicCqe.Read(new byte[31]));
        Assert.Contains("32 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sizes_MatchDocumentedSizes()
    {
        Assert.Equal(16, RnicSge.Size);
        Assert.Equal(128, RnicSendWqe.Size);
        Assert.Equal(64, RnicRecvWqe.Size);
        Assert.Equal(32, RnicCqe.Size);
        Assert.Equal(32, RnicEqe.Size);
        Assert.Equal(64, RnicCommand.Size);
        Assert.Equal(32, RnicCommandCompletion.Size);
        Assert.Equal(64, RnicQpAttributes.Size);
        Assert.Equal(64, RnicPacketHeader.Size);
        Assert.Equal(8, RnicMttEntry.Size);
    }
}
