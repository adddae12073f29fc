using FsCheck;
using FsCheck.Experimental;
using FsCheck.Fluent;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// The FsCheck model-based machine: generates command sequences (with swarm configurations when asked), runs each
/// on a fresh <see cref="CoherenceSystem"/>, and shrinks a failing sequence by deleting commands (every command's
/// <see cref="CoherenceCommand.Pre"/> is re-checked against the shrunk sequence's models).
/// </summary>
public sealed class CoherenceMachine : Machine<CoherenceSystem, ShapeModel>
{
    private readonly CoherenceConfig _config;
    private readonly bool _swarm;

    /// <summary>A machine for <paramref name="config"/> (its seed is replaced by a generated one per case).</summary>
    /// <param name="config">Target, devices, kinds and mutants.</param>
    /// <param name="maxCommands">Commands per case.</param>
    /// <param name="swarm">Each case enables a random subset of <see cref="CoherenceConfig.Kinds"/>.</param>
    public CoherenceMachine(CoherenceConfig config, int maxCommands, bool swarm)
        : base(maxCommands)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxCommands);
        _config = config;
        _swarm = swarm;
    }

    /// <inheritdoc />
    public override Arbitrary<Setup<CoherenceSystem, ShapeModel>> Setup => Arb.From(
        from hi in Gen.Choose(0, int.MaxValue)
        from lo in Gen.Choose(0, int.MaxValue)
        from mask in Gen.Choose(0, (int)CommandKinds.All)
        let kinds = _swarm ? Swarm(_config.Kinds, (CommandKinds)mask) : _config.Kinds
        select (Setup<CoherenceSystem, ShapeModel>)new CoherenceSetup(_config with { Seed = ((ulong)hi << 31) ^ (ulong)lo, Kinds = kinds }));

    /// <inheritdoc />
    public override TearDown<CoherenceSystem> TearDown => new CoherenceTearDown(Counters);

    /// <summary>Precondition counters summed over every case this machine ran.</summary>
    public CoherenceCounters Counters { get; } = new();

    /// <inheritdoc />
    public override Gen<Operation<CoherenceSystem, ShapeModel>> Next(ShapeModel model) =>
        CommandGenerator.Next(model).Select(c => (Operation<CoherenceSystem, ShapeModel>)new CoherenceOperation(c));

    // A swarm subset: the bits chosen, but always something that maps memory and something that uses it.
    private static CommandKinds Swarm(CommandKinds allowed, CommandKinds chosen) =>
        (allowed & chosen) | (allowed & CommandKinds.Mmap) | (allowed & (CommandKinds.DeviceRead | CommandKinds.DeviceWrite));

    private sealed class CoherenceSetup(CoherenceConfig config) : Setup<CoherenceSystem, ShapeModel>
    {
        public override CoherenceSystem Actual() => new(config);

        public override ShapeModel Model() => ShapeModel.Initial(config);

        public override string ToString() => $"config: {config}";
    }

    private sealed class CoherenceTearDown(CoherenceCounters total) : TearDown<CoherenceSystem>
    {
        public override void Actual(CoherenceSystem actual)
        {
            try
            {
                lock (total)
                    total.Merge(actual.Counters);
                var leaks = actual.TearDown();
                if (leaks.Count > 0)
                    throw new CoherenceViolationException($"{actual.Config}: at teardown: {string.Join("; ", leaks)}");
            }
            finally
            {
                actual.Dispose();
            }
        }

        public override string ToString() => "teardown (every process exits; leak check)";
    }
}

/// <summary>One <see cref="CoherenceCommand"/> as an FsCheck operation.</summary>
public sealed class CoherenceOperation(CoherenceCommand command) : Operation<CoherenceSystem, ShapeModel>
{
    /// <summary>The command.</summary>
    public CoherenceCommand Command { get; } = command;

    /// <inheritdoc />
    public override bool Pre(ShapeModel _arg1) => Command.Pre(_arg1);

    /// <inheritdoc />
    public override ShapeModel Run(ShapeModel _arg1) => Command.Next(_arg1);

    /// <inheritdoc />
    public override Property Check(CoherenceSystem _arg1, ShapeModel _arg2)
    {
        var violations = _arg1.Step(Command);
        return (violations.Count == 0).Label(violations.Count == 0 ? "ok" : $"{Command}: {string.Join("; ", violations)} [{_arg1.Config}]");
    }

    /// <inheritdoc />
    public override string ToString() => Command.ToString();
}

/// <summary>A coherence rule was broken (thrown by the teardown check and by <see cref="CoherenceSuite"/>).</summary>
public sealed class CoherenceViolationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CoherenceViolationException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public CoherenceViolationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public CoherenceViolationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
