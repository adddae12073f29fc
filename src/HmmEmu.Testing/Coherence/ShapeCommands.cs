using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Testing.Coherence;

/// <summary>mmap(MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS) of the first <paramref name="Count"/> pages of a slot, replacing what was there.</summary>
public sealed record MmapSlot(int P, int Slot, int Count, Prot Prot) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.Mmap;

    /// <inheritdoc />
    public override bool ChangesShape => true;

    /// <inheritdoc />
    public override (int First, int Count)? Pages => (Slot * Layout.PagesPerSlot, Count);

    /// <inheritdoc />
    public override ShapeModel Next(ShapeModel model) => model.WithProt(P, Slot * Layout.PagesPerSlot, Count, Prot);

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system) =>
        new(system.Mm(P).Mmap(Layout.PageAddress(Slot * Layout.PagesPerSlot), (ulong)Count * Layout.PageSize, Prot,
            MapFlags.PrivateAnonymous | MapFlags.Fixed, out _));

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations) =>
        ExpectAllowed(true, outcome, expectations, "MAP_FIXED");

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        if (outcome.Err == Errno.Ok)
            memory.Map(P, Slot * Layout.PagesPerSlot, Count, Prot);
    }

    /// <inheritdoc />
    public override string ToString() => $"P{P}.mmap(slot {Slot}, {Count} pages, {Prot})";
}

/// <summary>munmap of a page range (mapped or not).</summary>
public sealed record Munmap(int P, int First, int Count) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.Munmap;

    /// <inheritdoc />
    public override bool ChangesShape => true;

    /// <inheritdoc />
    public override (int First, int Count)? Pages => (First, Count);

    /// <inheritdoc />
    public override ShapeModel Next(ShapeModel model) => model.WithProt(P, First, Count, null);

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system) =>
        new(system.Mm(P).Munmap(Layout.PageAddress(First), (ulong)Count * Layout.PageSize));

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations) =>
        ExpectAllowed(true, outcome, expectations, "munmap of an aligned range");

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        if (outcome.Err == Errno.Ok)
            memory.Unmap(P, First, Count);
    }

    /// <inheritdoc />
    public override string ToString() => $"P{P}.munmap(pages {Range(First, Count)})";
}

/// <summary>mprotect of a fully mapped page range.</summary>
public sealed record Mprotect(int P, int First, int Count, Prot Prot) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.Mprotect;

    /// <inheritdoc />
    public override bool ChangesShape => true;

    /// <inheritdoc />
    public override (int First, int Count)? Pages => (First, Count);

    /// <inheritdoc />
    public override bool Pre(ShapeModel model) => model.Alive(P) && model.AllMapped(P, First, Count);

    /// <inheritdoc />
    public override ShapeModel Next(ShapeModel model) => model.WithProt(P, First, Count, Prot);

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system) =>
        new(system.Mm(P).Mprotect(Layout.PageAddress(First), (ulong)Count * Layout.PageSize, Prot));

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations) =>
        ExpectAllowed(true, outcome, expectations, "mprotect of a mapped range");

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        if (outcome.Err != Errno.Ok)
            return;
        var p = memory.Process(P)!;
        for (int page = First; page < First + Count; page++)
            p.Prot[page] = Prot;
    }

    /// <inheritdoc />
    public override string ToString() => $"P{P}.mprotect(pages {Range(First, Count)}, {Prot})";
}

/// <summary>madvise(MADV_DONTNEED) of a fully mapped page range: private anonymous pages read back as zeros.</summary>
public sealed record MadviseDontNeed(int P, int First, int Count) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.Madvise;

    /// <inheritdoc />
    public override (int First, int Count)? Pages => (First, Count);

    /// <inheritdoc />
    public override bool Pre(ShapeModel model) => model.Alive(P) && model.AllMapped(P, First, Count);

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system) =>
        new(system.Mm(P).Madvise(Layout.PageAddress(First), (ulong)Count * Layout.PageSize, Advice.DontNeed));

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations) =>
        ExpectAllowed(true, outcome, expectations, "madvise of a mapped range");

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        if (outcome.Err != Errno.Ok)
            return;
        for (int page = First; page < First + Count; page++)
        {
            for (int w = 0; w < Layout.WordsPerPage; w++)
                memory.Set(P, page, w, 0);
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"P{P}.madvise_dontneed(pages {Range(First, Count)})";
}

/// <summary>fork of process <paramref name="P"/>; the child gets model id <paramref name="Child"/>.</summary>
public sealed record Fork(int P, int Child) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.Fork;

    /// <inheritdoc />
    public override bool ChangesShape => true;

    /// <inheritdoc />
    public override bool Pre(ShapeModel model) =>
        model.Alive(P) && Child == model.Processes.Length && model.LiveCount < Layout.MaxProcesses;

    /// <inheritdoc />
    public override ShapeModel Next(ShapeModel model) => model.WithFork(P);

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        system.AddProcess(Child, system.ProcessOf(P).Fork());
        return CommandOutcome.Ok;
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        int id = memory.Fork(P);
        if (id != Child)
            throw new InvalidOperationException($"fork made model process {id}, expected {Child}");
    }

    /// <inheritdoc />
    public override string ToString() => $"P{P}.fork() -> P{Child}";
}

/// <summary>exit of a forked process: its mirrors are closed and its address space torn down.</summary>
public sealed record Exit(int P) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.Exit;

    /// <inheritdoc />
    public override bool ChangesShape => true;

    /// <inheritdoc />
    public override bool Pre(ShapeModel model) => P > 0 && model.Alive(P);

    /// <inheritdoc />
    public override ShapeModel Next(ShapeModel model) => model.WithExit(P);

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        system.ExitProcess(P);
        return CommandOutcome.Ok;
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome) => memory.Exit(P);

    /// <inheritdoc />
    public override string ToString() => $"P{P}.exit()";
}

/// <summary>
/// OOM kill of a forked process: the reaper's pass (non-blockable MMU_NOTIFY_UNMAP invalidations, which a driver
/// refuses when it would have to sleep) runs first, then the process exits.
/// </summary>
public sealed record OomKill(int P) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.OomKill;

    /// <inheritdoc />
    public override bool ChangesShape => true;

    /// <inheritdoc />
    public override bool Pre(ShapeModel model) => P > 0 && model.Alive(P);

    /// <inheritdoc />
    public override ShapeModel Next(ShapeModel model) => model.WithExit(P);

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        var err = system.Mm(P).OomReap();
        system.NoteOomReap(err);
        system.ExitAfterStep(P);   // the victim exits once every thread of this step is done
        return new CommandOutcome(err);
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
        if (outcome.Err is not (Errno.Ok or Errno.EAGAIN))
            expectations.Fail("errno", $"{this}: the reaper returned {outcome.Err}; only 0 or EAGAIN are possible");
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome) => memory.Exit(P);

    /// <inheritdoc />
    public override string ToString() => $"P{P}.oom_kill()";
}
