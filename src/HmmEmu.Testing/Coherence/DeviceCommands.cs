using System.Buffers.Binary;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Testing.Coherence;

/// <summary>A command that acts through device <c>Device</c>'s mirror of process <c>P</c> on pages [First, First+Count).</summary>
public abstract record DeviceCommand(int P, int Device, int First, int Count) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => P;

    /// <inheritdoc />
    public override (int First, int Count)? Pages => (First, Count);

    /// <inheritdoc />
    public override bool Pre(ShapeModel model) =>
        model.Alive(P) && Device < model.Config.TotalDevices && (model.Config.CapabilitiesOf(Device) & Needs) == Needs;

    /// <summary>The device capability the command needs.</summary>
    protected virtual MirrorCapabilities Needs => MirrorCapabilities.None;

    /// <summary>"P1.dev0" for messages.</summary>
    protected string Who => $"P{P}.dev{Device}";
}

/// <summary>Device read of a page range through the mirror.</summary>
public sealed record DeviceRead(int P, int Device, int First, int Count) : DeviceCommand(P, Device, First, Count)
{
    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.DeviceRead;

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        var buffer = new byte[Count * Layout.PageSize];
        var err = system.Context(P, Device).Read(Layout.PageAddress(First), buffer);
        return new CommandOutcome(err, err == Errno.Ok ? TrackedWords(buffer, Count) : null);
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
        ExpectAllowed(memory.AllowAll(P, First, Count, Prot.Read), outcome, expectations, "the pages' protections");
        if (outcome.Err == Errno.Ok)
            ExpectWords(memory, First, Count, outcome.Words!, expectations);
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        if (outcome.Err == Errno.Ok)
            ObserveWords(memory, First, Count, outcome.Words!);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Who}.read(pages {Range(First, Count)})";
}

/// <summary>Device write of tagged values to a page range through the mirror.</summary>
public sealed record DeviceWrite(int P, int Device, int First, int Count, int Tag) : DeviceCommand(P, Device, First, Count)
{
    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.DeviceWrite;

    /// <inheritdoc />
    public override ShapeModel Next(ShapeModel model) => model.WithTagUsed();

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        var buffer = new byte[Count * Layout.PageSize];
        for (int p = 0; p < Count; p++)
        {
            for (int w = 0; w < Layout.WordsPerPage; w++)
                BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(p * Layout.PageSize + Layout.WordOffset(w)), Layout.Value(Tag, First + p, w));
        }
        return new CommandOutcome(system.Context(P, Device).Write(Layout.PageAddress(First), buffer));
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations) =>
        ExpectAllowed(memory.AllowAll(P, First, Count, Prot.ReadWrite), outcome, expectations, "the pages' protections");

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        for (int p = First; p < First + Count; p++)
        {
            for (int w = 0; w < Layout.WordsPerPage; w++)
            {
                // A failed device write may have written the pages before the one that failed.
                if (outcome.Err == Errno.Ok)
                    memory.Set(P, p, w, Layout.Value(Tag, p, w));
                else
                    memory.Maybe(P, p, w, Layout.Value(Tag, p, w));
            }
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{Who}.write(pages {Range(First, Count)}, tag {Tag})";
}

/// <summary>Migration of a page range to the device's memory (content must not change).</summary>
public sealed record MigrateToDevice(int P, int Device, int First, int Count) : DeviceCommand(P, Device, First, Count)
{
    /// <inheritdoc />
    protected override MirrorCapabilities Needs => MirrorCapabilities.Migrate;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.MigrateToDevice;

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system) =>
        new(system.Context(P, Device).MigrateToDevice(Layout.PageAddress(First), (ulong)Count));

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
        // Migration is best effort (a busy page stays), but only of readable memory.
        if (outcome.Err == Errno.Ok && !memory.AllowAll(P, First, Count, Prot.Read))
            expectations.Fail("errno", $"INV-9 (permission): {this} succeeded on pages that are not all readable");
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
    }

    /// <inheritdoc />
    public override string ToString() => $"{Who}.migrate_to_device(pages {Range(First, Count)})";
}

/// <summary>Migration of a page range back to system memory (content must not change).</summary>
public sealed record MigrateToSystem(int P, int Device, int First, int Count) : DeviceCommand(P, Device, First, Count)
{
    /// <inheritdoc />
    protected override MirrorCapabilities Needs => MirrorCapabilities.Migrate;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.MigrateToSystem;

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system) =>
        new(system.Context(P, Device).MigrateToSystem(Layout.PageAddress(First), (ulong)Count));

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
    }

    /// <inheritdoc />
    public override string ToString() => $"{Who}.migrate_to_system(pages {Range(First, Count)})";
}

/// <summary>Device-exclusive access to a page range, read back through the device (content must not change).</summary>
public sealed record DeviceExclusive(int P, int Device, int First, int Count) : DeviceCommand(P, Device, First, Count)
{
    /// <inheritdoc />
    protected override MirrorCapabilities Needs => MirrorCapabilities.Exclusive;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.Exclusive;

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        var buffer = new byte[Count * Layout.PageSize];
        var err = system.Context(P, Device).Exclusive(Layout.PageAddress(First), (ulong)Count, buffer);
        return new CommandOutcome(err, err == Errno.Ok ? TrackedWords(buffer, Count) : null);
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
        if (outcome.Err != Errno.Ok)
            return;
        if (!memory.AllowAll(P, First, Count, Prot.ReadWrite))
            expectations.Fail("errno", $"INV-9 (permission): {this} got exclusive (atomic) access to pages that are not all writable");
        ExpectWords(memory, First, Count, outcome.Words!, expectations);
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        if (outcome.Err == Errno.Ok)
            ObserveWords(memory, First, Count, outcome.Words!);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Who}.exclusive(pages {Range(First, Count)})";
}

/// <summary>Device atomic add of <paramref name="Delta"/> to tracked word 0 of page <c>First</c>.</summary>
public sealed record DeviceAtomicAdd(int P, int Device, int Page, int Delta) : DeviceCommand(P, Device, Page, 1)
{
    /// <inheritdoc />
    protected override MirrorCapabilities Needs => MirrorCapabilities.Atomics;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.DeviceAtomic;

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        var err = system.Context(P, Device).AtomicAdd(Layout.PageAddress(Page), Delta, out long? previous);
        return new CommandOutcome(err, Previous: previous);
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
        ExpectAllowed(memory.AllowAll(P, Page, 1, Prot.ReadWrite), outcome, expectations, "the page's protection");
        if (outcome.Err == Errno.Ok && outcome.Previous is long previous)
        {
            var c = memory.Candidates(P, Page, 0);
            if (Array.IndexOf(c, (ulong)previous) < 0)
                expectations.Fail($"w{Page}.0", $"INV-8/INV-7 (device atomic): {this} saw old value 0x{previous:x}; the model allows {IdealMemory.Format(c)}");
        }
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(outcome);
        if (outcome.Err != Errno.Ok)
        {
            if (outcome.Aborted)
                memory.MaybeAddToEach(P, Page, 0, Delta);   // the reset may have come after the add
            return;
        }
        if (outcome.Previous is long previous)
            memory.Set(P, Page, 0, (ulong)(previous + Delta));
        else
            memory.AddToEach(P, Page, 0, Delta);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Who}.atomic_add(page {Page}, {Delta})";
}

/// <summary>Closes device <c>Device</c>'s mirror of process <c>P</c> (notifier removal); the next device command reopens it.</summary>
public sealed record Reopen(int P, int Device) : DeviceCommand(P, Device, 0, 0)
{
    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.Reopen;

    /// <inheritdoc />
    public override (int First, int Count)? Pages => null;

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        system.CloseContext(P, Device);
        return CommandOutcome.Ok;
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
    }

    /// <inheritdoc />
    public override string ToString() => $"{Who}.close()";
}

/// <summary>
/// Resets device <c>Device</c> while processes use it (issued from a thread of process <c>P</c>): its work in flight
/// is aborted. A device command of the same device running concurrently may fail (<see cref="CommandOutcome.Aborted"/>);
/// everything else must hold as before: translations justified (INV-1), faults answered (INV-13), aborted work
/// accounted for (INV-12), no lost writes (INV-7).
/// </summary>
public sealed record DeviceReset(int P, int Device) : DeviceCommand(P, Device, 0, 0)
{
    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.DeviceReset;

    /// <inheritdoc />
    public override (int First, int Count)? Pages => null;

    /// <inheritdoc />
    protected override MirrorCapabilities Needs => MirrorCapabilities.Reset;

    /// <inheritdoc />
    public override CommandOutcome Execute(CoherenceSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        system.ResetDevice(Device);
        return CommandOutcome.Ok;
    }

    /// <inheritdoc />
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations)
    {
    }

    /// <inheritdoc />
    public override void Apply(IdealMemory memory, CommandOutcome outcome)
    {
    }

    /// <inheritdoc />
    public override bool Aborts(CoherenceCommand other, CommandOutcome otherOutcome) =>
        other is DeviceCommand d && d.Device == Device && otherOutcome is { Err: not Errno.Ok };

    /// <inheritdoc />
    public override string ToString() => $"dev{Device}.reset() from P{P}";
}
