using HmmEmu.Kernel;
using HmmEmu.Simulation;

namespace HmmEmu.Testing.Coherence;

/// <summary>Kinds of command the generator may produce; a swarm run enables a random subset.</summary>
[Flags]
public enum CommandKinds
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>CPU read of a tracked word.</summary>
    CpuRead = 1 << 0,

    /// <summary>CPU write of a tracked word.</summary>
    CpuWrite = 1 << 1,

    /// <summary>CPU atomic add on a tracked word.</summary>
    CpuAtomic = 1 << 2,

    /// <summary>mmap(MAP_FIXED) of a slot.</summary>
    Mmap = 1 << 3,

    /// <summary>munmap of a page range.</summary>
    Munmap = 1 << 4,

    /// <summary>mprotect of a page range.</summary>
    Mprotect = 1 << 5,

    /// <summary>madvise(MADV_DONTNEED) of a page range.</summary>
    Madvise = 1 << 6,

    /// <summary>fork.</summary>
    Fork = 1 << 7,

    /// <summary>exit of a forked process.</summary>
    Exit = 1 << 8,

    /// <summary>OOM kill of a forked process: the reaper's non-blockable invalidations, then exit.</summary>
    OomKill = 1 << 9,

    /// <summary>Device read through the mirror.</summary>
    DeviceRead = 1 << 10,

    /// <summary>Device write through the mirror.</summary>
    DeviceWrite = 1 << 11,

    /// <summary>Migration to device memory.</summary>
    MigrateToDevice = 1 << 12,

    /// <summary>Migration back to system memory.</summary>
    MigrateToSystem = 1 << 13,

    /// <summary>Device-exclusive access.</summary>
    Exclusive = 1 << 14,

    /// <summary>Device atomic add.</summary>
    DeviceAtomic = 1 << 15,

    /// <summary>Close and reopen a mirror (notifier removal and insertion).</summary>
    Reopen = 1 << 16,

    /// <summary>Two commands on two threads at once, interleaved by the seeded scheduler.</summary>
    Concurrent = 1 << 17,

    /// <summary>Reset of a device while it is in use (targets with <see cref="MirrorCapabilities.Reset"/>).</summary>
    DeviceReset = 1 << 18,

    /// <summary>Every kind.</summary>
    All = (1 << 19) - 1,
}

/// <summary>
/// One run's configuration: everything besides the command list that decides what happens. Printed in full with
/// every failure, because a seed alone does not reproduce a run whose options differ.
/// </summary>
public sealed record CoherenceConfig
{
    /// <summary>The driver under test.</summary>
    public required IMirrorTarget Target { get; init; }

    /// <summary>The simulation seed: decides every interleaving of the simulated threads.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>How many devices of the target the machine has (1 or 2).</summary>
    public int Devices { get; init; } = 1;

    /// <summary>
    /// Other drivers on the same machine, one device each (after the target's devices), whose migrations and
    /// invalidations the target must respect and which must respect the target's: our mirror is the usual companion.
    /// </summary>
    public IReadOnlyList<IMirrorTarget> Companions { get; init; } = [];

    /// <summary>Devices on the machine: the target's, plus one per companion.</summary>
    public int TotalDevices => Devices + Companions.Count;

    /// <summary>The driver behind device <paramref name="device"/> (the target's come first, then the companions).</summary>
    public IMirrorTarget TargetOf(int device) => device < Devices ? Target : Companions[device - Devices];

    /// <summary>What device <paramref name="device"/> supports.</summary>
    public MirrorCapabilities CapabilitiesOf(int device) =>
        device < TotalDevices ? TargetOf(device).Capabilities : MirrorCapabilities.None;

    /// <summary>The command kinds the generator may use.</summary>
    public CommandKinds Kinds { get; init; } = CommandKinds.All;

    /// <summary>Test-only kernel bugs switched on (the bug catalogue); None for a real run.</summary>
    public KernelMutant Mutants { get; init; }

    /// <summary>
    /// When set, the simulation takes its scheduling choices from this script instead of the seed (a shrunk
    /// counterexample's interleaving; see <see cref="CoherenceFailure.Schedule"/>). Null for a seeded run.
    /// </summary>
    public ScheduleScript? Schedule { get; init; }

    /// <summary>Most devices of the target on one machine.</summary>
    public const int MaxDevices = 4;

    /// <summary>
    /// Throws <see cref="ArgumentException"/> naming the bad setting and the fix if this configuration cannot run:
    /// no target, a device count outside 1..<see cref="MaxDevices"/>, or no command kind that maps memory.
    /// </summary>
    public void Validate()
    {
        if (Target is null)
            throw new ArgumentException("CoherenceConfig.Target is null: set it to the driver under test (for example new MirrorTarget()).");
        if (Devices is < 1 or > MaxDevices)
            throw new ArgumentException($"CoherenceConfig.Devices is {Devices}: the machine holds 1 to {MaxDevices} devices of the target.");
        if (Companions is null || Companions.Any(c => c is null))
            throw new ArgumentException("CoherenceConfig.Companions is null or holds null: list the other drivers on the machine, or leave it empty.");
        if (TotalDevices > MaxDevices)
            throw new ArgumentException($"CoherenceConfig has {TotalDevices} devices ({Devices} of the target, {Companions.Count} companion(s)): the machine holds at most {MaxDevices}.");
        if ((Kinds & CommandKinds.Mmap) == 0)
            throw new ArgumentException($"CoherenceConfig.Kinds ({Kinds}) leaves out Mmap: without it nothing is ever mapped and no command can act. Add CommandKinds.Mmap.");
    }

    /// <summary>The kinds the target can run: those it lacks the capability for are removed.</summary>
    public CommandKinds EffectiveKinds
    {
        get
        {
            var k = Kinds;
            var caps = Companions.Aggregate(Target.Capabilities, (c, t) => c | t.Capabilities);
            if ((caps & MirrorCapabilities.Migrate) == 0)
                k &= ~(CommandKinds.MigrateToDevice | CommandKinds.MigrateToSystem);
            if ((caps & MirrorCapabilities.Exclusive) == 0)
                k &= ~CommandKinds.Exclusive;
            if ((caps & MirrorCapabilities.Atomics) == 0)
                k &= ~CommandKinds.DeviceAtomic;
            if ((caps & MirrorCapabilities.Reset) == 0)
                k &= ~CommandKinds.DeviceReset;
            return k;
        }
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"target={Target.Name} seed={Seed} devices={Devices}{string.Concat(Companions.Select(c => "+" + c.Name))} kinds={(Kinds == CommandKinds.All ? "all" : Kinds.ToString())}" +
        (Mutants == KernelMutant.None ? "" : $" kernel-mutants={Mutants}") + (Schedule is null ? "" : $" schedule={Schedule}");
}
