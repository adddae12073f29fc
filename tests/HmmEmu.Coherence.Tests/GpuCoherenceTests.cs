using HmmEmu.Kernel.Vm;
using HmmEmu.Testing.Coherence;
using Xunit.Abstractions;

namespace HmmEmu.Coherence.Tests;

/// <summary>
/// The suite against our GPU (register-level model, SVM driver): copy kernels as device reads and writes, prefetch
/// both ways, the atomic-add kernel, against every CPU and address-space command, with the device page table and both
/// engines' TLBs checked after every step. Fixed FsCheck seeds keep CI deterministic; HMMEMU_COHERENCE_CASES makes
/// the run longer.
/// </summary>
public sealed class GpuCoherenceTests(ITestOutputHelper output)
{
    [Fact]
    public void Gpu_OneDevice_KeepsEveryInvariant()
    {
        var report = CoherenceSuite.Check(new CoherenceConfig { Target = new GpuTarget() }, MirrorCoherenceTests.Cases(40), maxCommands: 30, swarm: false, replay: (21, 3));
        output.WriteLine(report.ToString());

        report.ThrowIfFailed();
        var c = report.Counters;
        Assert.True(c[CoherenceCounters.TranslationsChecked] > 0, "no GPU translation was checked");
        Assert.True(c[CoherenceCounters.Migrations] > 0, "no migration to or from VRAM ran");
        Assert.True(c[CoherenceCounters.DeviceRacedInvalidation] > 0, "no GPU command raced an invalidating one");
        Assert.True(c[CoherenceCounters.Callbacks] > 0, "no invalidate callback ran");
    }

    [Fact]
    public void Gpu_TwoDevicesAndAMirrorSwarm_KeepEveryInvariant()
    {
        var config = new CoherenceConfig { Target = new GpuTarget(), Devices = 2, Companions = [new MirrorTarget()] };

        var report = CoherenceSuite.Check(config, MirrorCoherenceTests.Cases(40), maxCommands: 30, swarm: true, replay: (22, 5));
        output.WriteLine(report.ToString());

        report.ThrowIfFailed();
    }

    // Found by the suite: two GPU contexts of one process faulting on one window each migrated it to VRAM on their
    // first fault, and each migration (moving nothing: the pages were in VRAM already) zapped the other's mapping
    // before its replay could use it — forever. The driver now skips a migration with nothing to move.
    [Fact]
    public void Gpu_TwoContextsOfOneProcessOnOneWindow_BothFinish()
    {
        IReadOnlyList<CoherenceCommand> commands =
        [
            new MmapSlot(0, 1, 7, Prot.ReadWrite),
            new DeviceAtomicAdd(0, 0, 14, 5),
            new CpuRead(0, 14, 0),
            new Concurrent(new DeviceWrite(0, 0, 14, 1, 1), new DeviceRead(0, 0, 14, 1)),
        ];

        ReplayAssert.Passes(new CoherenceConfig { Target = new GpuTarget() }, commands);
    }

    // Found by the suite: an atomic on one GPU (make_device_exclusive) and a read of the same page on another took the
    // page from each other before either's replayed access ran — forever. The fault handler now naps on a repeated
    // fault of one page (thrashing throttle), so one of them finishes first.
    [Fact]
    public void Gpu_AtomicOnOneGpuAndReadOnAnother_BothFinish()
    {
        // The case as generated (simulation seed 57), up to the pair that never finished.
        IReadOnlyList<CoherenceCommand> commands =
        [
            new MmapSlot(0, 1, 7, Prot.None),
            new Concurrent(new DeviceAtomicAdd(0, 0, 14, 1), new Mprotect(0, 14, 1, Prot.ReadWrite)),
            new CpuRead(0, 14, 1),
            new Reopen(0, 1),
            new Concurrent(new Munmap(0, 6, 1), new MigrateToDevice(0, 0, 6, 1)),
            new Concurrent(new Mprotect(0, 8, 4, Prot.None), new MigrateToDevice(0, 0, 8, 4)),
            new Mprotect(0, 11, 2, Prot.ReadWrite),
            new DeviceAtomicAdd(0, 0, 12, 4),
            new DeviceRead(0, 1, 10, 1),
            new DeviceWrite(0, 0, 13, 1, 1),
            new Munmap(0, 9, 2),
            new Concurrent(new DeviceAtomicAdd(0, 0, 14, 6), new DeviceRead(0, 1, 14, 1)),
        ];

        ReplayAssert.Passes(new CoherenceConfig { Target = new GpuTarget(), Devices = 2, Seed = 57 }, commands);
    }

    [Fact]
    public void Gpu_ResetWhileACancelledFaultIsPending_CloseStillReturns()
    {
        // Found by the first device-reset commands (simulation seed 1382995701097869919): the read's fault is
        // cancelled (the context's sticky error is FaultCancelled) and the reset discards the command before the engine
        // acts on the cancel. The driver recorded the lost work only as a DeviceReset error, which does not replace the
        // first one, so closing the context at exit waited forever for fences the reset had discarded.
        IReadOnlyList<CoherenceCommand> commands =
        [
            new DeviceRead(0, 0, 21, 3),
            new Concurrent(new DeviceReset(0, 0), new Munmap(0, 18, 1)),
        ];

        var result = AssertReplayPasses(1382995701097869919, commands);

        Assert.Equal(1, result.Counters.Counts[CoherenceCounters.DeviceResets]);
    }

    [Fact]
    public void Gpu_ResetWhileAFailedContextCloses_CloseStillReturns()
    {
        // Found by the device-reset commands (simulation seed 4243704604309779584): the second write replaces the
        // context whose fault the first one's cancel left pending; the reset discards that context's command while its
        // Close waits for the fence. Reset recovery marked lost work only on contexts still open, so the Close waited
        // forever.
        IReadOnlyList<CoherenceCommand> commands =
        [
            new Concurrent(new DeviceWrite(0, 0, 3, 4, 5), new DeviceReset(0, 0)),
            new Concurrent(new DeviceWrite(0, 0, 8, 2, 7), new DeviceReset(0, 0)),
        ];

        AssertReplayPasses(4243704604309779584, commands);
    }

    [Fact]
    public void Gpu_ResetDuringAMigrationCopy_BothFinish()
    {
        // Found by the device-reset commands (simulation seed 2085085101129155181): the migration's copy held the copy
        // engine's lock while it waited for descriptors the reset had discarded, and reset recovery needed that lock to
        // reprogram the engine. A copy now gives up (EIO) once recovery is under way.
        IReadOnlyList<CoherenceCommand> commands =
        [
            new Concurrent(new MmapSlot(0, 1, 5, Prot.Read), new CpuWrite(0, 8, 0, 5)),
            new Concurrent(new MigrateToSystem(0, 0, 10, 4), new DeviceRead(0, 0, 10, 4)),
            new Concurrent(new DeviceReset(0, 0), new MigrateToSystem(0, 0, 12, 3)),
        ];

        AssertReplayPasses(2085085101129155181, commands);
    }

    [Fact]
    public void Gpu_AtomicOnAVramPageTheChildWritesAfterFork_Succeeds()
    {
        // Found while checking the reset commands (simulation seed 4552683255309393570): page 0 went to VRAM before the
        // fork, so both processes share it read-only; the parent's GPU atomic must bring it back to break the sharing,
        // but the child's CPU atomic was migrating it at that moment. The driver gave up after two tries (EPERM); it now
        // naps and retries until the range timeout.
        IReadOnlyList<CoherenceCommand> commands =
        [
            new Concurrent(new MmapSlot(0, 0, 3, Prot.ReadWrite), new MigrateToDevice(0, 0, 19, 1)),
            new Concurrent(new DeviceWrite(0, 0, 0, 1, 2), new MigrateToDevice(0, 0, 0, 1)),
            new Concurrent(new CpuAtomicAdd(0, 16, 9), new Fork(0, 1)),
            new Concurrent(new DeviceAtomicAdd(0, 0, 0, 5), new CpuAtomicAdd(1, 0, 4)),
        ];

        AssertReplayPasses(4552683255309393570, commands);
    }

    [Theory]
    [InlineData("gpu", "gpu", 1, "")]
    [InlineData("gpu,gpu,mirror", "gpu", 2, "mirror")]
    [InlineData("mirror,gpu", "mirror", 1, "gpu")]
    public void Parse_DeviceList_GivesTargetRunAndCompanions(string list, string target, int devices, string companions)
    {
        var config = CoherenceTargets.Parse(list);

        Assert.Equal(target, config.Target.Name);
        Assert.Equal(devices, config.Devices);
        Assert.Equal(companions, string.Join(",", config.Companions.Select(c => c.Name)));
        Assert.Equal(list, CoherenceTargets.DeviceList(config));
    }

    [Theory]
    [InlineData("gpu,fpga", "unknown device 'fpga'")]
    [InlineData("", "the device list is empty")]
    [InlineData("gpu,gpu,gpu,mirror,mirror", "at most 4")]
    public void Parse_BadDeviceList_ThrowsNamingTheEntry(string list, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => CoherenceTargets.Parse(list));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    // Replays a kept case on one GPU with its simulation seed: every command runs and no rule breaks.
    private static ReplayResult AssertReplayPasses(ulong seed, IReadOnlyList<CoherenceCommand> commands) =>
        ReplayAssert.Passes(new CoherenceConfig { Target = new GpuTarget(), Seed = seed }, commands);
}
