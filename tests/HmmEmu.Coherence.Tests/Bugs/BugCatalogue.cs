using HmmEmu.Kernel;
using HmmEmu.Testing.Coherence;

namespace HmmEmu.Coherence.Tests.Bugs;

/// <summary>
/// The catalogue of deliberate bugs the coherence suite must catch: the kernel's switchable mutants (run with our
/// mirror) and the mutant mirror driver's bugs (run with our mirror as a companion device, whose migrations the
/// mutant must respect).
/// </summary>
public static class BugCatalogue
{
    /// <summary>A catalogued bug: its name, the configuration that switches it on, and why the suite does not catch it yet (null if it does).</summary>
    public sealed record Entry(string Name, CoherenceConfig Config, string? NotCaughtYet = null)
    {
        /// <inheritdoc />
        public override string ToString() => Name;
    }

    /// <summary>Every catalogued bug.</summary>
    public static IReadOnlyList<Entry> All { get; } =
    [
        .. Enum.GetValues<KernelMutant>().Where(m => m != KernelMutant.None)
            .Select(m => new Entry($"kernel:{m}", new CoherenceConfig { Target = new MirrorTarget(), Mutants = m }, NotCaught(m))),
        .. Enum.GetValues<MirrorBug>().Where(b => b != MirrorBug.None)
            .Select(b => new Entry($"driver:{b}", new CoherenceConfig { Target = new MutantMirrorTarget(b), Companions = [new MirrorTarget()] })),
    ];

    /// <summary>The names of the bugs the suite catches, for xunit theories.</summary>
    public static TheoryData<string> Caught()
    {
        var data = new TheoryData<string>();
        foreach (var e in All.Where(e => e.NotCaughtYet is null))
            data.Add(e.Name);
        return data;
    }

    // The two kernel mutants whose damage the suite does not see yet. Both leave the device with a stale translation
    // only until the victim process exits, and the suite checks translations between steps, after that exit; it
    // needs checks at access time (INV-2/INV-11 on every device access) to catch them.
    private static string? NotCaught(KernelMutant m) => m switch
    {
        KernelMutant.OomReapIgnoresRefusal =>
            "the reaper zaps while the mirror still maps the pages, but the victim exits in the same step and its mirror goes with it; needs an access-time INV-11 check",
        KernelMutant.RemoveSkipsCallbackWait =>
            "close returns while a callback still runs, but nothing touches the closed mirror afterwards; needs a check that no callback of a removed notifier is running when Remove returns (INV-15)",
        _ => null,
    };

    /// <summary>The entry called <paramref name="name"/>.</summary>
    public static Entry Get(string name) => All.Single(e => e.Name == name);
}
