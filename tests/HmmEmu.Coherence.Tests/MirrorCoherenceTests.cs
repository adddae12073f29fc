using FsCheck;
using FsCheck.Xunit;
using HmmEmu.Testing.Coherence;
using Xunit.Abstractions;

namespace HmmEmu.Coherence.Tests;

/// <summary>
/// The suite against our own mirror driver: generated command sequences (CPU, mirror and concurrent pairs) keep every
/// invariant. Fixed FsCheck seeds keep CI deterministic; set HMMEMU_COHERENCE_CASES for a longer run.
/// </summary>
public sealed class MirrorCoherenceTests(ITestOutputHelper output)
{
    internal static int Cases(int ci) =>
        int.TryParse(Environment.GetEnvironmentVariable("HMMEMU_COHERENCE_CASES"), out int n) && n > 0 ? n : ci;

    [Fact]
    public void Mirror_OneDevice_KeepsEveryInvariant()
    {
        var report = CoherenceSuite.Check(new CoherenceConfig { Target = new MirrorTarget() }, Cases(60), maxCommands: 40, swarm: false, replay: (1, 3));
        output.WriteLine(report.ToString());

        report.ThrowIfFailed();
        Assert.Equal(Cases(60), report.Cases);
    }

    [Fact]
    public void Mirror_TwoDevicesSwarm_KeepsEveryInvariant()
    {
        var report = CoherenceSuite.Check(new CoherenceConfig { Target = new MirrorTarget(), Devices = 2 }, Cases(60), maxCommands: 40, swarm: true, replay: (2, 5));
        output.WriteLine(report.ToString());

        report.ThrowIfFailed();
    }

    // The same machine as an FsCheck [Property], the way a driver author's test project can use it (fixed Replay
    // seed so CI is deterministic).
    [Property(MaxTest = 20, Replay = "5,7")]
    public Property Mirror_AsFsCheckProperty_KeepsEveryInvariant() =>
        CoherenceSuite.Property(new CoherenceConfig { Target = new MirrorTarget() }, maxCommands: 30, swarm: true);

    [Fact]
    public void Mirror_Run_ExercisesThePreconditionsOfTheInvariants()
    {
        var report = CoherenceSuite.Check(new CoherenceConfig { Target = new MirrorTarget() }, 40, maxCommands: 40, swarm: false, replay: (3, 7));
        output.WriteLine(report.Counters.ToString());

        report.ThrowIfFailed();
        var c = report.Counters;
        Assert.True(c[CoherenceCounters.ConcurrentPairs] > 0, "no concurrent pair ran");
        Assert.True(c[CoherenceCounters.DeviceRacedInvalidation] > 0, "no device command raced an invalidating one");
        Assert.True(c[CoherenceCounters.Callbacks] > 0, "no invalidate callback ran");
        Assert.True(c[CoherenceCounters.Migrations] > 0, "no migration ran");
        Assert.True(c[CoherenceCounters.ForkWithDeviceMappings] > 0, "no fork with device mappings present");
        Assert.True(c[CoherenceCounters.TranslationsChecked] > 0, "no device translation was checked");
    }

    [Theory]
    [InlineData(0, "Devices is 0")]
    [InlineData(5, "Devices is 5")]
    public void Check_BadDeviceCount_ThrowsNamingTheSetting(int devices, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => CoherenceSuite.Check(new CoherenceConfig { Target = new MirrorTarget(), Devices = devices }, 1));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_KindsWithoutMmap_ThrowsNamingTheFix()
    {
        var config = new CoherenceConfig { Target = new MirrorTarget(), Kinds = CommandKinds.DeviceRead };

        var e = Assert.Throws<ArgumentException>(() => CoherenceSuite.Check(config, 1));

        Assert.Contains("Add CommandKinds.Mmap", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_ZeroCases_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => CoherenceSuite.Check(new CoherenceConfig { Target = new MirrorTarget() }, 0));
}
