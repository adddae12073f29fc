using System.Collections.Immutable;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// What the command generator knows without running anything: the run's configuration, which model processes are
/// alive and which pages each has mapped with what protection, and the next unique write tag. Values live in
/// <see cref="IdealMemory"/>, next to the system under test, because concurrent commands make them depend on what
/// actually happened. Immutable, as FsCheck's model-based machine requires.
/// </summary>
/// <param name="Config">The run's configuration.</param>
/// <param name="Processes">Per model process id: null once it exited, else each tracked page's protection (null = unmapped).</param>
/// <param name="NextTag">The tag the next writing command gets.</param>
public sealed record ShapeModel(CoherenceConfig Config, ImmutableArray<ImmutableArray<Prot?>?> Processes, int NextTag)
{
    /// <summary>The model before the first command: one process, nothing mapped.</summary>
    public static ShapeModel Initial(CoherenceConfig config) =>
        new(config, [ImmutableArray.CreateRange(new Prot?[Layout.Pages])], 1);

    /// <summary>Whether model process <paramref name="id"/> exists and is alive.</summary>
    public bool Alive(int id) => id >= 0 && id < Processes.Length && Processes[id] is not null;

    /// <summary>The live model process ids, ascending.</summary>
    public IEnumerable<int> LiveProcesses()
    {
        for (int i = 0; i < Processes.Length; i++)
        {
            if (Processes[i] is not null)
                yield return i;
        }
    }

    /// <summary>How many processes are alive.</summary>
    public int LiveCount => LiveProcesses().Count();

    /// <summary>A page's protection, or null if unmapped or the process is gone.</summary>
    public Prot? ProtOf(int id, int page) => Alive(id) ? Processes[id]!.Value[page] : null;

    /// <summary>Whether every page of the range is mapped.</summary>
    public bool AllMapped(int id, int first, int count)
    {
        for (int p = first; p < first + count; p++)
        {
            if (ProtOf(id, p) is null)
                return false;
        }
        return true;
    }

    /// <summary>The model with pages [first, first+count) of <paramref name="id"/> set to <paramref name="prot"/> (null unmaps).</summary>
    public ShapeModel WithProt(int id, int first, int count, Prot? prot)
    {
        var pages = Processes[id]!.Value.ToBuilder();
        for (int p = first; p < first + count; p++)
            pages[p] = prot;
        return this with { Processes = Processes.SetItem(id, pages.ToImmutable()) };
    }

    /// <summary>The model after fork of <paramref name="parent"/>: a new id with the same pages.</summary>
    public ShapeModel WithFork(int parent) => this with { Processes = Processes.Add(Processes[parent]) };

    /// <summary>The model after process <paramref name="id"/> exited.</summary>
    public ShapeModel WithExit(int id) => this with { Processes = Processes.SetItem(id, null) };

    /// <summary>The model with the tag counter advanced.</summary>
    public ShapeModel WithTagUsed() => this with { NextTag = NextTag + 1 };

    /// <inheritdoc />
    public override string ToString()
    {
        var parts = new List<string>();
        for (int i = 0; i < Processes.Length; i++)
        {
            if (Processes[i] is not { } pages)
                continue;
            int mapped = pages.Count(p => p is not null);
            parts.Add($"P{i}:{mapped}p");
        }
        return string.Join(" ", parts);
    }
}
