using System.Buffers.Binary;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Testing.Coherence;

/// <summary>The CPU of process <paramref name="P"/> reads tracked word <paramref name="Word"/> of page <paramref name="Page"/>.</summary>
public sealed record CpuRead(int P, int Page, int Word) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.CpuRead;

    /// <inheritdoc />
    public override (int First, int Count)? Pages => (Page, 1);

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        Span<byte> b = stackalloc byte[8];
        var err = system.Mm(P).Access(Layout.PageAddress(Page) + (ulong)Layout.WordOffset(Word), b, default, write: false, out _, out _);
        return new CommandOutcome(err, err == Errno.Ok ? [BinaryPrimitives.ReadUInt64LittleEndian(b)] : null);
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
        ExpectAllowed(memory.AllowAll(P, Page, 1, Prot.Read), outcome, expectations, $"prot {memory.ProtOf(P, Page)?.ToString() ?? "unmapped"}");
        if (outcome.Err == Errno.Ok)
        {
            var c = memory.Candidates(P, Page, Word);
            if (Array.IndexOf(c, outcome.Words![0]) < 0)
                expectations.Fail($"w{Page}.{Word}", $"INV-7 (data value): {this} read 0x{outcome.Words[0]:x}; the model allows {IdealMemory.Format(c)}");
        }
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        if (outcome.Err == Errno.Ok)
            memory.Observe(P, Page, Word, outcome.Words![0]);
    }

    /// <inheritdoc />
    public override string ToString() => $"P{P}.cpu.read(page {Page}, word {Word})";
}

/// <summary>The CPU of process <paramref name="P"/> writes a tagged value to a tracked word.</summary>
public sealed record CpuWrite(int P, int Page, int Word, int Tag) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.CpuWrite;

    /// <inheritdoc />
    public override (int First, int Count)? Pages => (Page, 1);

    /// <inheritdoc />
    public override ShapeModel Next(ShapeModel model) => model.WithTagUsed();

    private ulong Value => Layout.Value(Tag, Page, Word);

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, Value);
        return new CommandOutcome(system.Mm(P).Access(Layout.PageAddress(Page) + (ulong)Layout.WordOffset(Word), default, b, write: true, out _, out _));
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations) =>
        ExpectAllowed(memory.AllowAll(P, Page, 1, Prot.Write), outcome, expectations, $"prot {memory.ProtOf(P, Page)?.ToString() ?? "unmapped"}");

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        if (outcome.Err == Errno.Ok)
            memory.Set(P, Page, Word, Value);
    }

    /// <inheritdoc />
    public override string ToString() => $"P{P}.cpu.write(page {Page}, word {Word}, 0x{Value:x})";
}

/// <summary>The CPU of process <paramref name="P"/> atomically adds <paramref name="Delta"/> to tracked word 0 of a page.</summary>
public sealed record CpuAtomicAdd(int P, int Page, int Delta) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.CpuAtomic;

    /// <inheritdoc />
    public override (int First, int Count)? Pages => (Page, 1);

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        var err = system.Mm(P).AtomicAdd64(Layout.PageAddress(Page), Delta, out long previous);
        return new CommandOutcome(err, Previous: previous);
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
        ExpectAllowed(memory.AllowAll(P, Page, 1, Prot.ReadWrite), outcome, expectations, $"prot {memory.ProtOf(P, Page)?.ToString() ?? "unmapped"}");
        if (outcome.Err == Errno.Ok)
        {
            var c = memory.Candidates(P, Page, 0);
            if (Array.IndexOf(c, (ulong)outcome.Previous!.Value) < 0)
                expectations.Fail($"w{Page}.0", $"INV-7 (data value): {this} saw old value 0x{outcome.Previous!.Value:x}; the model allows {IdealMemory.Format(c)}");
        }
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        if (outcome.Err == Errno.Ok)
            memory.Set(P, Page, 0, (ulong)(outcome.Previous!.Value + Delta));
    }

    /// <inheritdoc />
    public override string ToString() => $"P{P}.cpu.atomic_add(page {Page}, {Delta})";
}
