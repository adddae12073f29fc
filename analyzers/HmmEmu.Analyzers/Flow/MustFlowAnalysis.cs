using System.Collections.Generic;
using System.Collections.Immutable;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers.Flow;

/// <summary>
/// What a rule tells <see cref="MustFlowAnalysis"/>: how an operation or a branch changes the set of facts that hold
/// on every path (a reference taken, a key revoked), and what to report once the fixed point is known.
/// </summary>
internal abstract class MustFlowRule
{
    /// <summary>The analysis running this rule (set before the first callback): resolves flow captures and symbols.</summary>
    public MustFlowAnalysis Analysis { get; set; } = null!;

    /// <summary>The facts after <paramref name="operation"/> (its operands already evaluated).</summary>
    public abstract ImmutableHashSet<object> Transfer(IOperation operation, ImmutableHashSet<object> state);

    /// <summary>
    /// The facts on the edge where <paramref name="value"/> evaluated to <paramref name="sense"/>, for a value the
    /// analysis does not take apart itself (constants, <c>!</c>, conversions and flow captures it does); null if that
    /// edge cannot be taken.
    /// </summary>
    public virtual ImmutableHashSet<object>? Condition(IOperation value, bool sense, ImmutableHashSet<object> state) => state;

    /// <summary>Called once per reachable operation in the final pass, with the facts that hold just before its own effect.</summary>
    public virtual void Observe(IOperation operation, ImmutableHashSet<object> before)
    {
    }
}

/// <summary>
/// A forward "must" dataflow over one <see cref="ControlFlowGraph"/>: the facts that hold on every path to a point
/// (intersection where paths meet), with the rule deciding what adds and removes facts. Runs on
/// <see cref="ForwardFlow{TState}"/>: branches are path-sensitive (<see cref="MustFlowRule.Condition"/>), each
/// <c>finally</c> is replayed for the branch that leaves through it, and a catch handler starts from the facts common to
/// every point of its try block. Used by the typestate rules (RDMA001, RDMA002) whose state is not a lock set.
/// </summary>
internal sealed class MustFlowAnalysis : ForwardFlow<ImmutableHashSet<object>>
{
    /// <summary>The empty fact set (symbols compare by <see cref="SymbolEqualityComparer.Default"/>).</summary>
    public static readonly ImmutableHashSet<object> None = ImmutableHashSet.Create<object>(FactComparer.Instance);

    private readonly MustFlowRule _rule;

    private MustFlowAnalysis(ControlFlowGraph cfg, MustFlowRule rule)
        : base(cfg)
    {
        _rule = rule;
    }

    /// <inheritdoc/>
    protected override ImmutableHashSet<object> Entry => None;

    // The rule observes operations only; a block's branches need not be refined again.
    /// <inheritdoc/>
    protected override bool ReplaysBranches => false;

    /// <summary>
    /// Solves <paramref name="cfg"/> for <paramref name="rule"/> and replays the fixed point into
    /// <see cref="MustFlowRule.Observe"/>. Returns false (having observed nothing) if the graph did not settle within the
    /// work bound.
    /// </summary>
    public static bool Analyze(ControlFlowGraph cfg, MustFlowRule rule, CancellationToken cancellation)
    {
        var analysis = new MustFlowAnalysis(cfg, rule);
        rule.Analysis = analysis;
        return analysis.Run(cancellation);
    }

    /// <summary>The operation a flow capture reference or conversion stands for (itself otherwise).</summary>
    public IOperation Resolve(IOperation operation) => Values.ResolveCaptures(operation);

    /// <summary>
    /// The stable symbol an expression denotes: a local, parameter, field or property (original definition), or the
    /// containing type for <c>this</c>; null for anything else.
    /// </summary>
    public ISymbol? KeyOf(IOperation? operation) => Resolve(operation!) switch
    {
        ILocalReferenceOperation l => l.Local,
        IParameterReferenceOperation p => p.Parameter,
        IFieldReferenceOperation f => f.Field.OriginalDefinition,
        IPropertyReferenceOperation p => p.Property.OriginalDefinition,
        IInstanceReferenceOperation i => i.Type,
        _ => null,
    };

    /// <inheritdoc/>
    protected override ImmutableHashSet<object> Join(ImmutableHashSet<object> a, ImmutableHashSet<object> b) =>
        ReferenceEquals(a, b) || a.SetEquals(b) ? a : a.Intersect(b);

    /// <inheritdoc/>
    protected override bool Same(ImmutableHashSet<object> a, ImmutableHashSet<object> b) => a.SetEquals(b);

    // A block reached both normally and inside a finally run starts from what holds on both.
    /// <inheritdoc/>
    protected override ImmutableHashSet<object>? ReplayEntry(ImmutableHashSet<object>? normal, ImmutableHashSet<object>? inFinally) =>
        normal is null ? inFinally : inFinally is null ? normal : Join(normal, inFinally);

    /// <inheritdoc/>
    protected override ImmutableHashSet<object> Transfer(IOperation operation, ImmutableHashSet<object> state)
    {
        if (Reporting)
            _rule.Observe(operation, state);
        return _rule.Transfer(operation, state);
    }

    /// <inheritdoc/>
    protected override ImmutableHashSet<object> NestedFunction(IOperation function, ImmutableHashSet<object> state)
    {
        if (Reporting)
            _rule.Observe(function, state);
        return state;
    }

    /// <inheritdoc/>
    protected override ImmutableHashSet<object>? Branch(IOperation condition, bool sense, ImmutableHashSet<object> state) =>
        Refine(condition, sense, state, 0);

    /// <inheritdoc/>
    protected override ImmutableHashSet<object>? RefineAtom(IOperation value, bool sense, ImmutableHashSet<object> state, int depth) =>
        _rule.Condition(value, sense, state);

    /// <summary>Compares symbols by <see cref="SymbolEqualityComparer.Default"/> and anything else by <see cref="object.Equals(object)"/>.</summary>
    private sealed class FactComparer : IEqualityComparer<object>
    {
        public static readonly FactComparer Instance = new();

        public new bool Equals(object? x, object? y) =>
            x is ISymbol a && y is ISymbol b ? SymbolEqualityComparer.Default.Equals(a, b) : object.Equals(x, y);

        public int GetHashCode(object obj) => obj is ISymbol s ? SymbolEqualityComparer.Default.GetHashCode(s) : obj.GetHashCode();
    }
}
