using HmmEmu.Simulation;

namespace HmmEmu.Kernel;

/// <summary>Configuration of a simulated host kernel.</summary>
public sealed record KernelOptions
{
    /// <summary>Scheduler mode, seed and timing model.</summary>
    public SimulationOptions Simulation { get; init; } = new();

    /// <summary>Bytes of system RAM (a whole number of 4 KiB pages). Default 256 MiB.</summary>
    public ulong RamBytes { get; init; } = 256UL << 20;

    /// <summary>How many pfns are set aside for device memory (ZONE_DEVICE) that drivers register. Default 256 Ki pages (1 GiB).</summary>
    public int DevicePages { get; init; } = 256 * 1024;

    /// <summary>Whether the lock checker (ordering, recursion, sleep-in-atomic) runs. On by default.</summary>
    public bool Lockdep { get; init; } = true;

    /// <summary>Whether a kernel WARN throws (panic_on_warn) instead of only being recorded. Off by default.</summary>
    public bool PanicOnWarn { get; init; }

    /// <summary>Whether trace events are kept in memory for export (they are always hashed). Off by default.</summary>
    public bool RetainTrace { get; init; }

    /// <summary>
    /// Deliberate kernel bugs to switch on. Test-only: never set outside the coherence suite's bug catalogue. Default
    /// <see cref="KernelMutant.None"/> (the correct kernel).
    /// </summary>
    public KernelMutant Mutants { get; init; }

    /// <summary>Options with the given seed and mode, everything else default.</summary>
    public static KernelOptions For(ulong seed, SchedulerMode mode = SchedulerMode.Deterministic) =>
        new() { Simulation = new SimulationOptions { Seed = seed, Mode = mode } };
}
