using System;
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
/// (intersection where paths meet), with the rule deciding what adds and removes facts. Branches are path-sensitive
/// (<see cref="MustFlowRule.Condition"/>), each <c>finally</c> is replayed for the branch that leaves through it, and a
/// catch handler starts from the facts common to every point of its try block. Used by the typestate rules (RDMA001,
/// RDMA002) whose state is not a lock set; <see cref="LockFlowAnalysis"/> stays the engine of the locking rules.
/// </summary>
internal sealed class MustFlowAnalysis
{
    private const int MaxVisitsPerBlock = 64;
    private const int MaxDepth = 16;

    /// <summary>The empty fact set (symbols compare by <see cref="SymbolEqualityComparer.Default"/>).</summary>
    public static readonly ImmutableHashSet<object> None = ImmutableHashSet.Create<object>(FactComparer.Instance);

    private readonly ControlFlowGraph _cfg;
    private readonly MustFlowRule _rule;
    private readonly CancellationToken _cancellation;
    private readonly Dictionary<CaptureId, IOperation?> _captures = new();
    private readonly ImmutableHashSet<object>?[] _entry;
    private readonly ImmutableHashSet<object>?[] _finallyEntry;
    private readonly int[] _visits;
    private readonly bool[] _queued;
    private readonly Queue<int> _work = new();
    private bool _gaveUp;

    private MustFlowAnalysis(ControlFlowGraph cfg, MustFlowRule rule, CancellationToken cancellation)
    {
        _cfg = cfg;
        _rule = rule;
        _cancellation = cancellation;
        int n = cfg.Blocks.Length;
        _entry = new ImmutableHashSet<object>?[n];
        _finallyEntry = new ImmutableHashSet<object>?[n];
        _visits = new int[n];
        _queued = new bool[n];
    }

    /// <summary>The graph analysed.</summary>
    public ControlFlowGraph Graph => _cfg;

    /// <summary>
    /// Solves <paramref name="cfg"/> for <paramref name="rule"/> and replays the fixed point into
    /// <see cref="MustFlowRule.Observe"/>. Returns false (having observed nothing) if the graph did not settle within the
    /// work bound.
    /// </summary>
    public static bool Analyze(ControlFlowGraph cfg, MustFlowRule rule, CancellationToken cancellation)
    {
        var analysis = new MustFlowAnalysis(cfg, rule, cancellation);
        rule.Analysis = analysis;
        analysis.Prepass();
        if (!analysis.Solve())
            return false;
        analysis.Replay();
        return true;
    }

    /// <summary>The operation a flow capture reference or conversion stands for (itself otherwise).</summary>
    public IOperation Resolve(IOperation operation)
    {
        for (int depth = 0; depth < MaxDepth; depth++)
        {
            switch (operation)
            {
                case IConversionOperation c:
                    operation = c.Operand;
                    continue;
                case IFlowCaptureReferenceOperation r when _captures.TryGetValue(r.Id, out var captured) && captured is not null:
                    operation = captured;
                    continue;
                default:
                    return operation;
            }
        }
        return operation;
    }

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

    // ---- the fixed point -----------------------------------------------------------------------------------------

    private void Prepass()
    {
        foreach (var block in _cfg.Blocks)
        {
            foreach (var op in block.Operations)
                ScanCaptures(op);
            if (block.BranchValue is not null)
                ScanCaptures(block.BranchValue);
        }
    }

    private void ScanCaptures(IOperation root)
    {
        foreach (var op in root.DescendantsAndSelf())
        {
            if (op is IFlowCaptureOperation capture)
            {
                _captures[capture.Id] = _captures.TryGetValue(capture.Id, out var existing) && !ReferenceEquals(existing, capture.Value)
                    ? null
                    : capture.Value;
            }
        }
    }

    private bool Solve()
    {
        Merge(0, None);
        while (_work.Count > 0)
        {
            _cancellation.ThrowIfCancellationRequested();
            int ordinal = _work.Dequeue();
            _queued[ordinal] = false;
            if (++_visits[ordinal] > MaxVisitsPerBlock)
                return false;
            var block = _cfg.Blocks[ordinal];
            var state = _entry[ordinal]!;
            var after = WalkBlock(block, state, observe: false);
            PropagateToHandlers(block, Join(state, after)!);
            FollowBranches(block, after, Merge);
            if (_gaveUp)
                return false;
        }
        return true;
    }

    private void Replay()
    {
        foreach (var block in _cfg.Blocks)
        {
            var state = Join(_entry[block.Ordinal], _finallyEntry[block.Ordinal]);
            if (state is not null)
                WalkBlock(block, state, observe: true);
        }
    }

    private void Merge(int ordinal, ImmutableHashSet<object> state)
    {
        var old = _entry[ordinal];
        var joined = Join(old, state)!;
        if (old is not null && old.SetEquals(joined))
            return;
        _entry[ordinal] = joined;
        if (!_queued[ordinal])
        {
            _queued[ordinal] = true;
            _work.Enqueue(ordinal);
        }
    }

    private static ImmutableHashSet<object>? Join(ImmutableHashSet<object>? a, ImmutableHashSet<object>? b)
    {
        if (a is null)
            return b;
        if (b is null || ReferenceEquals(a, b))
            return a;
        return a.SetEquals(b) ? a : a.Intersect(b);
    }

    private void PropagateToHandlers(BasicBlock block, ImmutableHashSet<object> state)
    {
        for (var region = block.EnclosingRegion; region is not null; region = region.EnclosingRegion)
        {
            if (region.Kind is ControlFlowRegionKind.Finally or ControlFlowRegionKind.Root)
                return;
            if (region.Kind != ControlFlowRegionKind.Try || region.EnclosingRegion?.Kind != ControlFlowRegionKind.TryAndCatch)
                continue;
            foreach (var handler in region.EnclosingRegion.NestedRegions)
            {
                if (!ReferenceEquals(handler, region))
                    Merge(handler.FirstBlockOrdinal, state);
            }
        }
    }

    private void FollowBranches(BasicBlock block, ImmutableHashSet<object> state, Action<int, ImmutableHashSet<object>> merge)
    {
        if (block.ConditionKind == ControlFlowConditionKind.None)
        {
            Follow(block.FallThroughSuccessor, state, merge);
            return;
        }
        bool jumpWhen = block.ConditionKind == ControlFlowConditionKind.WhenTrue;
        Follow(block.ConditionalSuccessor, Condition(block.BranchValue!, jumpWhen, state, 0), merge);
        Follow(block.FallThroughSuccessor, Condition(block.BranchValue!, !jumpWhen, state, 0), merge);
    }

    private void Follow(ControlFlowBranch? branch, ImmutableHashSet<object>? state, Action<int, ImmutableHashSet<object>> merge)
    {
        if (branch?.Destination is not { } dest || state is null)
            return;
        var after = ApplyFinally(branch, state);
        if (after is not null && dest.Kind != BasicBlockKind.Exit)
            merge(dest.Ordinal, after);
    }

    private ImmutableHashSet<object>? ApplyFinally(ControlFlowBranch branch, ImmutableHashSet<object> state)
    {
        ImmutableHashSet<object>? s = state;
        foreach (var region in branch.FinallyRegions)
        {
            s = RunFinally(region, s);
            if (s is null)
                return null;
        }
        return s;
    }

    private ImmutableHashSet<object>? RunFinally(ControlFlowRegion region, ImmutableHashSet<object> input)
    {
        int first = region.FirstBlockOrdinal, last = region.LastBlockOrdinal;
        var local = new ImmutableHashSet<object>?[last - first + 1];
        var queue = new Queue<int>();
        local[0] = input;
        queue.Enqueue(first);
        ImmutableHashSet<object>? result = null;
        int steps = 0;
        while (queue.Count > 0)
        {
            if (++steps > MaxVisitsPerBlock * local.Length)
            {
                _gaveUp = true;
                return null;
            }
            int ordinal = queue.Dequeue();
            var block = _cfg.Blocks[ordinal];
            var entry = local[ordinal - first]!;
            _finallyEntry[ordinal] = Join(_finallyEntry[ordinal], entry);
            var after = WalkBlock(block, entry, observe: false);
            void Local(ControlFlowBranch? branch, ImmutableHashSet<object>? s)
            {
                if (branch is null || s is null)
                    return;
                if (branch.Semantics == ControlFlowBranchSemantics.StructuredExceptionHandling)
                {
                    result = Join(result, s);
                    return;
                }
                var dest = branch.Destination;
                if (dest is null || dest.Ordinal < first || dest.Ordinal > last)
                    return;
                var through = ApplyFinally(branch, s);
                if (through is null)
                    return;
                var old = local[dest.Ordinal - first];
                var joined = Join(old, through)!;
                if (old is not null && old.SetEquals(joined))
                    return;
                local[dest.Ordinal - first] = joined;
                queue.Enqueue(dest.Ordinal);
            }
            if (block.ConditionKind == ControlFlowConditionKind.None)
            {
                Local(block.FallThroughSuccessor, after);
            }
            else
            {
                bool jumpWhen = block.ConditionKind == ControlFlowConditionKind.WhenTrue;
                Local(block.ConditionalSuccessor, Condition(block.BranchValue!, jumpWhen, after, 0));
                Local(block.FallThroughSuccessor, Condition(block.BranchValue!, !jumpWhen, after, 0));
            }
        }
        return result;
    }

    // ---- transfer ----------------------------------------------------------------------------------------------------

    private ImmutableHashSet<object> WalkBlock(BasicBlock block, ImmutableHashSet<object> state, bool observe)
    {
        foreach (var op in block.Operations)
            state = Walk(op, state, observe);
        if (block.BranchValue is not null)
            state = Walk(block.BranchValue, state, observe);
        return state;
    }

    private ImmutableHashSet<object> Walk(IOperation operation, ImmutableHashSet<object> state, bool observe)
    {
        if (operation is IFlowAnonymousFunctionOperation or IAnonymousFunctionOperation or ILocalFunctionOperation)
        {
            if (observe)
                _rule.Observe(operation, state);
            return state;   // runs later, on its own graph
        }
        foreach (var child in operation.ChildOperations)
            state = Walk(child, state, observe);
        if (observe)
            _rule.Observe(operation, state);
        return _rule.Transfer(operation, state);
    }

    private ImmutableHashSet<object>? Condition(IOperation value, bool sense, ImmutableHashSet<object> state, int depth)
    {
        if (depth > MaxDepth)
            return state;
        if (value.ConstantValue.HasValue && value.ConstantValue.Value is bool constant)
            return constant == sense ? state : null;
        switch (value)
        {
            case IConversionOperation c:
                return Condition(c.Operand, sense, state, depth + 1);
            case IUnaryOperation { OperatorKind: UnaryOperatorKind.Not } not:
                return Condition(not.Operand, !sense, state, depth + 1);
            case IFlowCaptureReferenceOperation r:
                return _captures.TryGetValue(r.Id, out var captured) && captured is not null
                    ? Condition(captured, sense, state, depth + 1)
                    : state;
            default:
                return _rule.Condition(value, sense, state);
        }
    }

    /// <summary>Compares symbols by <see cref="SymbolEqualityComparer.Default"/> and anything else by <see cref="object.Equals(object)"/>.</summary>
    private sealed class FactComparer : IEqualityComparer<object>
    {
        public static readonly FactComparer Instance = new();

        public new bool Equals(object? x, object? y) =>
            x is ISymbol a && y is ISymbol b ? SymbolEqualityComparer.Default.Equals(a, b) : object.Equals(x, y);

        public int GetHashCode(object obj) => obj is ISymbol s ? SymbolEqualityComparer.Default.GetHashCode(s) : obj.GetHashCode();
    }
}
