namespace HmmEmu.Simulation.Tests;

public sealed class VirtualClockTests
{
    [Fact]
    public void Milliseconds_Two_IsTwoMillionNanoseconds()
    {
        Assert.Equal(2_000_000UL, VirtualClock.Milliseconds(2));
    }

    [Fact]
    public void Microseconds_Three_IsThreeThousandNanoseconds()
    {
        Assert.Equal(3_000UL, VirtualClock.Microseconds(3));
    }

    [Fact]
    public void Milliseconds_Overflow_ThrowsOverflowException()
    {
        Assert.Throws<OverflowException>(() => VirtualClock.Milliseconds(ulong.MaxValue / 1_000));
    }

    [Fact]
    public void Horizon_AfterThreadsSleepDifferentTimes_IsFurthestTime()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1 });

        s.Run(() =>
        {
            s.Spawn("short", () => s.Sleep(100));
            s.Spawn("long", () => s.Sleep(700));
        });

        Assert.Equal(700UL, s.Clock.Horizon);
    }

    [Fact]
    public void CopyNs_OnePage_RoundsUpAtDefaultBandwidth()
    {
        Assert.Equal(410UL, TimingModel.Default.CopyNs(4096));
    }

    [Fact]
    public void CopyNs_ZeroBandwidth_IsFree()
    {
        Assert.Equal(0UL, (TimingModel.Default with { MemcpyBytesPerNs = 0 }).CopyNs(4096));
    }
}
