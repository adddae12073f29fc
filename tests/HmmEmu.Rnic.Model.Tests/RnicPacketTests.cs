using HmmEmu.Rnic.Model;

namespace HmmEmu.Rnic.Model.Tests;

public sealed class RnicPacketTests
{
    [Fact]
    public void Wire_bytes_are_the_header_plus_the_payload()
    {
        var header = new RnicPacketHeader(RnicPacketOpcode.RdmaWriteOnly, RnicPacketFlags.AckRequest, 5, 7, 9, PayloadLength: 100);
        var packet = new RnicPacket(header, new byte[100]);
        Assert.Equal(RnicPacketHeader.Size + 100, packet.WireBytes);
        Assert.Equal(RnicPacketHeader.Size, new RnicPacket(header).WireBytes);
        Assert.Contains("RdmaWriteOnly", packet.ToString(), StringComparison.Ordinal);
    }
}
