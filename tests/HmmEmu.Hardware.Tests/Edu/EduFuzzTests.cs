using Xunit.Abstractions;

namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>
/// The "bad input" fuzz of the device-building blocks: at least 100 000 random operations against the edu device in
/// deterministic mode, over many seeds. See <see cref="EduFuzzRun"/> for the operations and the invariants.
/// </summary>
public sealed class EduFuzzTests(ITestOutputHelper output)
{
    private const int Seeds = 20;
    private const int OperationsPerSeed = 5_000;

    [Fact]
    public void Fuzz_RandomOperationsAcrossSeeds_NothingEscapesEveryDescriptorCompletesOnceAndDeviceStillCopies()
    {
        var total = new FuzzCounters();

        for (ulong seed = 1; seed <= Seeds; seed++)
        {
            var run = new EduFuzzRun(seed, OperationsPerSeed);
            try
            {
                run.Run();
            }
            catch (Exception ex)
            {
                Assert.Fail($"edu fuzz seed {seed} failed (replay: new EduFuzzRun({seed}, {OperationsPerSeed}).Run()): {ex}");
            }
            total.Add(run.Counters);
        }

        output.WriteLine($"{Seeds} seeds x {OperationsPerSeed} ops: {total}");
        Assert.True(total.Operations >= 100_000, $"only {total.Operations} operations ran");
        Assert.True(total.Clean > 0 && total.VerifiedBytes > 0, "the fuzz checked no data");
    }

    [Fact]
    public void Fuzz_SameSeedTwice_SameTraceHashAndCounters()
    {
        var first = new EduFuzzRun(7, 1_000);
        var second = new EduFuzzRun(7, 1_000);

        first.Run();
        second.Run();

        Assert.Equal(first.TraceHash, second.TraceHash);
        Assert.Equal(first.Counters.ToString(), second.Counters.ToString());
    }
}
