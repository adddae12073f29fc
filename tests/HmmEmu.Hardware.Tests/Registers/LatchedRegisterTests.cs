using HmmEmu.Hardware.Registers;

namespace HmmEmu.Hardware.Tests.Registers;

/// <summary>A configuration register latched on enable: stored while disabled, refused and reported while enabled.</summary>
public sealed class LatchedRegisterTests
{
    private const ulong At = 0x20;

    private sealed class Device
    {
        public bool Enabled;
        public readonly List<(ulong Offset, ulong Value)> Refused = [];
        public readonly RegisterFile File = new("test.bar0", 0x100);
        public readonly LatchedRegister Base;

        public Device() =>
            Base = LatchedRegister.Define64(File, At, "RING_BASE", "Ring base.", () => Enabled, (r, v) => Refused.Add((r.Offset, v)));
    }

    [Fact]
    public void Write_WhileDisabled_BecomesTheLatchedValue()
    {
        var d = new Device();

        d.File.Write(At, 8, 0x1234_5000);

        Assert.Equal(0x1234_5000UL, d.Base.Value);
        Assert.Equal(0x1234_5000UL, d.File.Read(At, 8));
        Assert.Empty(d.Refused);
    }

    [Fact]
    public void Write_WhileEnabled_RegisterKeepsTheLatchedValueAndTheWriteIsReported()
    {
        var d = new Device();
        d.File.Write(At, 8, 0x1000);
        d.Enabled = true;

        d.File.Write(At, 8, 0x9000);

        Assert.Equal(0x1000UL, d.Base.Value);
        Assert.Equal(0x1000UL, d.File.Read(At, 8));
        Assert.Equal([(At, 0x9000UL)], d.Refused);
    }

    [Fact]
    public void HalfWrite_WhileDisabled_LatchesTheWholeNewValue()
    {
        var d = new Device();
        d.File.Write(At, 8, 0x1_0000_0000);

        d.File.Write(At, 4, 0x2000);

        Assert.Equal(0x1_0000_2000UL, d.Base.Value);
    }

    [Fact]
    public void FileReset_AfterWrite_LatchedValueIsZero()
    {
        var d = new Device();
        d.File.Write(At, 8, 0x1000);

        d.File.Reset();

        Assert.Equal(0UL, d.Base.Value);
        Assert.Equal(0UL, d.File.Read(At, 8));
    }

    [Fact]
    public void Define32_AnyValue_IsA32BitReadWriteDoorbell()
    {
        var file = new RegisterFile("test.bar0", 0x100);

        var size = LatchedRegister.Define32(file, 0x28, "RING_SIZE", "Ring size.", () => false, (_, _) => { });

        Assert.Equal(RegisterWidth.Bits32, size.Register.Width);
        Assert.Equal(0xFFFF_FFFFUL, size.Register.ReadWriteMask);
        Assert.True(size.Register.IsDoorbell);
    }
}
