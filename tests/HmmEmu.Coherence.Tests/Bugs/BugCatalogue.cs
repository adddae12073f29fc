using HmmEmu.Kernel;
using HmmEmu.Testing.Coherence;

namespace HmmEmu.Coherence.Tests.Bugs;

/// <summary>
/// The catalogue of deliberate bugs the coherence suite must catch: the kernel's switchable mutants (run with our
/// mirror, or our GPU where a driver that refuses non-blockable invalidations is needed) and the mutant mirror
/// driver's bugs (run with our mirror as a companion device, whose migrations the mutant must respect).
/// </summary>
public static class BugCatalogue
{
    /// <summary>A catalogued bug: its name and the configuration that switches it on.</summary>
    public sealed record Entry(string Name, CoherenceConfig Config)
    {
        /// <inheritdoc />
        public override string ToString() => Name;
    }

    /// <summary>Every catalogued bug.</summary>
    public static IReadOnlyList<Entry> All { get; } =
    [
        .. Enum.GetValues<KernelMutant>().Where(m => m != KernelMutant.None)
            .Select(m => new Entry($"kernel:{m}", new CoherenceConfig { Target = TargetFor(m), Mutants = m })),
        .. Enum.GetValues<MirrorBug>().Where(b => b != MirrorBug.None)
            .Select(b => new Entry($"driver:{b}", new CoherenceConfig { Target = new MutantMirrorTarget(b), Companions = [new MirrorTarget()] })),
    ];

    /// <summary>The names of the bugs the suite catches, for xunit theories.</summary>
    public static TheoryData<string> Caught()
    {
        var data = new TheoryData<string>();
        foreach (var e in All)
            data.Add(e.Name);
        return data;
    }

    // The driver that shows a kernel mutant: our mirror, except for the OOM reaper's, which needs a driver that refuses
    // non-blockable invalidations of mapped pages (the GPU does whenever it maps any; the mirror only when its lock is
    // contended).
    private static IMirrorTarget TargetFor(KernelMutant m) => m is KernelMutant.OomReapIgnoresRefusal or KernelMutant.RemoveSkipsCallbackWait ? new GpuTarget() : new MirrorTarget();

    /// <summary>The entry called <paramref name="name"/>.</summary>
    public static Entry Get(string name) => All.Single(e => e.Name == name);
}
