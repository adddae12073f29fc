using System.Buffers.Binary;
using HmmEmu.Kernel;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// One step of a coherence run. A command knows when it may be generated (<see cref="Pre"/>, re-checked while
/// shrinking), how it changes the shape model (<see cref="Next"/>), how to run itself on the machine
/// (<see cref="Execute"/>, on a thread of its process inside the simulation), what the reference model expects of
/// its outcome (<see cref="Expect"/>) and how the outcome changes the reference model (<see cref="Apply"/>).
/// </summary>
public abstract record CoherenceCommand
{
    /// <summary>The model process the command runs in.</summary>
    public abstract int Process { get; }

    /// <summary>The command's kind (for swarm selection and counters).</summary>
    public abstract CommandKinds Kind { get; }

    /// <summary>Whether it changes mappings, protections or the set of processes (two such never run concurrently).</summary>
    public virtual bool ChangesShape => false;

    /// <summary>The tracked pages it acts on, if any.</summary>
    public virtual (int First, int Count)? Pages => null;

    /// <summary>Whether the command may run on a machine whose shape model is <paramref name="model"/>.</summary>
    public virtual bool Pre(ShapeModel model) => model.Alive(Process);

    /// <summary>The shape model after the command.</summary>
    public virtual ShapeModel Next(ShapeModel model) => model;

    /// <summary>Runs the command on a thread of its process. May sleep.</summary>
    public abstract CommandOutcome Execute(CoherenceSystem system);

    /// <summary>Checks <paramref name="outcome"/> against what the reference model <paramref name="memory"/> allows.</summary>
    public abstract void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations);

    /// <summary>Applies the command's effects, given what it observed, to <paramref name="memory"/>.</summary>
    public abstract void Apply(IdealMemory memory, CommandOutcome outcome);

    /// <summary>
    /// Whether this command, run concurrently with <paramref name="other"/>, may make it fail with
    /// <paramref name="otherOutcome"/> (a device reset aborts its device's work). Such an outcome is marked
    /// <see cref="CommandOutcome.Aborted"/>.
    /// </summary>
    public virtual bool Aborts(CoherenceCommand other, CommandOutcome otherOutcome) => false;

    /// <summary>Reads the tracked words of <paramref name="count"/> pages out of a page buffer.</summary>
    protected static ulong[] TrackedWords(ReadOnlySpan<byte> pages, int count)
    {
        var words = new ulong[count * Layout.WordsPerPage];
        for (int p = 0; p < count; p++)
        {
            for (int w = 0; w < Layout.WordsPerPage; w++)
                words[p * Layout.WordsPerPage + w] = BinaryPrimitives.ReadUInt64LittleEndian(pages[(p * Layout.PageSize + Layout.WordOffset(w))..]);
        }
        return words;
    }

    /// <summary>Checks read words against the model's candidates: an INV-7 problem for each word no order explains.</summary>
    protected void ExpectWords(IdealMemory memory, int first, int count, ulong[] words, Expectations e)
    {
        for (int p = 0; p < count; p++)
        {
            for (int w = 0; w < Layout.WordsPerPage; w++)
            {
                var c = memory.Candidates(Process, first + p, w);
                ulong got = words[p * Layout.WordsPerPage + w];
                if (Array.IndexOf(c, got) < 0)
                    e.Fail($"w{first + p}.{w}", $"INV-7 (data value): {this} read 0x{got:x} at page {first + p} word {w}; the model allows {IdealMemory.Format(c)}");
            }
        }
    }

    /// <summary>Narrows the model to what was read.</summary>
    protected void ObserveWords(IdealMemory memory, int first, int count, ulong[] words)
    {
        for (int p = 0; p < count; p++)
        {
            for (int w = 0; w < Layout.WordsPerPage; w++)
                memory.Observe(Process, first + p, w, words[p * Layout.WordsPerPage + w]);
        }
    }

    /// <summary>Expects success exactly when <paramref name="allowed"/>: an INV-9 problem if it succeeded without permission, a plain one if it failed with it.</summary>
    protected void ExpectAllowed(bool allowed, CommandOutcome outcome, Expectations e, string rule)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        ArgumentNullException.ThrowIfNull(e);
        if (outcome.Aborted)
            return;
        if (allowed && outcome.Err != Errno.Ok)
            e.Fail("errno", $"{this} failed with {outcome.Err} although {rule} allows it");
        else if (!allowed && outcome.Err == Errno.Ok)
            e.Fail("errno", $"INV-9 (permission): {this} succeeded although {rule} forbids it");
    }

    /// <summary>The first page and count as text.</summary>
    protected static string Range(int first, int count) => count == 1 ? $"{first}" : $"{first}+{count}";
}
