using HmmEmu.Testing.Coherence;
using Xunit.Abstractions;

namespace MyDevice.Tests;

/// <summary>
/// The coherence suite against the driver: random CPU, device and concurrent command sequences, every invariant checked
/// after every step, a failure shrunk to a short counterexample with the line that replays it. A companion mirror
/// device (the kernel's dmirror) migrates pages to device memory under the driver's feet.
/// </summary>
public class MyDevCoherenceTests(ITestOutputHelper output)
{
    [Fact]
    public void MyDev_WithAMirrorCompanion_KeepsEveryInvariant()
    {
        var config = new CoherenceConfig { Target = new MyDevTarget(), Companions = [new MirrorTarget()] };

        // A fixed seed keeps the test reproducible; raise cases (or drop replay) for a longer, wider search.
        var report = CoherenceSuite.Check(config, cases: 40, maxCommands: 30, swarm: true, replay: (1, 3));
        output.WriteLine(report.ToString());

        report.ThrowIfFailed();
        Assert.Equal(40, report.Cases);
    }
}
