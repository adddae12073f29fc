using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers.Flow;

/// <summary>
/// The forward dataflow engine every flow rule runs on: a worklist over one method's <see cref="ControlFlowGraph"/>
/// (operations in evaluation order, states merged where paths meet, a bound on visits per block), branch conditions
/// path-sensitive through <see cref="Branch"/>, a <c>finally</c> run with the state of each path that leaves through it,
/// catch handlers entered from the join of their try block's states; then one replay of the fixed point with
/// <see cref="Reporting"/> set, for the rule to report from. Lambdas and local functions are skipped: they run on their
/// own graphs (<see cref="MethodGraphs.Nested"/>).
/// </summary>
/// <remarks>
/// The state is the rule's: the lock set of <see cref="LockFlowAnalysis"/>, the facts that hold on every path of
/// <see cref="MustFlowAnalysis"/>, or a rule's own (an mm reference held, the ownership of destination pages).
/// </remarks>
/// <typeparam name="TState">An immutable state with value equality.</typeparam>
internal abstract class ForwardFlow<TState>
    where TState : class
{
    // A bound on work per block: the lattice is finite, but a pathological graph must not stall the IDE.
    private const int MaxVisitsPerBlock = 64;
    private const int MaxDepth = 16;

    private readonly TState?[] _entry;
    private readonly TState?[] _finallyEntry;
    private bool _gaveUp;

    /// <summary>Creates the analysis of <paramref name="graph"/> (and scans its values).</summary>
    protected ForwardFlow(ControlFlowGraph graph)
    {
        Graph = graph;
        Values = new GraphValues(graph);
        _entry = new TState?[graph.Blocks.Length];
        _finallyEntry = new TState?[graph.Blocks.Length];
    }

    /// <summary>The graph analysed.</summary>
    public ControlFlowGraph Graph { get; }

    /// <summary>The flow captures and single-assigned locals of <see cref="Graph"/>, to resolve operands through.</summary>
    public GraphValues Values { get; }

    /// <summary>Whether the pass running is the final replay (report from transfer functions only then).</summary>
    protected bool Reporting { get; private set; }

    /// <summary>The state at method entry.</summary>
    protected abstract TState Entry { get; }

    /// <summary>Whether the replay also follows each block's branches (refining conditions, reporting exits).</summary>
    protected virtual bool ReplaysBranches => true;

    /// <summary>The state where two paths meet.</summary>
    protected abstract TState Join(TState a, TState b);

    /// <summary>Whether two states are the same (the fixed point test).</summary>
    protected abstract bool Same(TState a, TState b);

    /// <summary>The effect of <paramref name="operation"/> (its operands were already walked).</summary>
    protected abstract TState Transfer(IOperation operation, TState state);

    /// <summary>The effect of reaching a lambda or local function (its body runs later, on its own graph).</summary>
    protected virtual TState NestedFunction(IOperation function, TState state) => state;

    /// <summary>The state on the edge where <paramref name="condition"/> is <paramref name="sense"/>; null if that edge cannot be taken.</summary>
    protected virtual TState? Branch(IOperation condition, bool sense, TState state) => state;

    /// <summary>
    /// A test the engine does not take apart itself (see <see cref="Refine"/>): the state on the edge where
    /// <paramref name="value"/> is <paramref name="sense"/>; null if that edge cannot be taken.
    /// </summary>
    protected virtual TState? RefineAtom(IOperation value, bool sense, TState state, int depth) => state;

    /// <summary>
    /// A path leaves the method normally (return or end of body): <paramref name="returnedValue"/> is the value of a
    /// <c>return</c> and <paramref name="syntax"/> its statement (both null otherwise); <paramref name="before"/> is the
    /// state at the end of the block, <paramref name="after"/> the state after every <c>finally</c> ran. Replay only.
    /// </summary>
    protected virtual void OnExit(IOperation? returnedValue, SyntaxNode? syntax, TState before, TState after)
    {
    }

    /// <summary>The state the replay starts a block from, given its state on normal paths and inside <c>finally</c> runs.</summary>
    protected virtual TState? ReplayEntry(TState? normal, TState? inFinally) => normal ?? inFinally;

    /// <summary>Solves and replays. False if the graph did not settle within the work bound (nothing was reported).</summary>
    public bool Run(CancellationToken cancellation)
    {
        if (!Solve(cancellation))
            return false;
        Replay();
        return true;
    }

    /// <summary>Runs to the fixed point. False if the graph did not settle within the work bound.</summary>
    protected bool Solve(CancellationToken cancellation)
    {
        int n = Graph.Blocks.Length;
        var visits = new int[n];
        var queued = new bool[n];
        var work = new Queue<int>();
        void Merge(int ordinal, TState state)
        {
            var old = _entry[ordinal];
            var joined = old is null ? state : Join(old, state);
            if (old is not null && Same(old, joined))
                return;
            _entry[ordinal] = joined;
            if (!queued[ordinal])
            {
                queued[ordinal] = true;
                work.Enqueue(ordinal);
            }
        }
        Merge(0, Entry);
        while (work.Count > 0)
        {
            cancellation.ThrowIfCancellationRequested();
            int ordinal = work.Dequeue();
            queued[ordinal] = false;
            if (++visits[ordinal] > MaxVisitsPerBlock)
                return false;
            var block = Graph.Blocks[ordinal];
            var state = _entry[ordinal]!;
            var after = WalkBlock(block, state);
            ToHandlers(block, Join(state, after), Merge);
            FollowBranches(block, after, Merge);
            if (_gaveUp)
                return false;
        }
        return true;
    }

    /// <summary>Walks every reachable block once more from its fixed-point state, with <see cref="Reporting"/> set.</summary>
    protected void Replay()
    {
        Reporting = true;
        foreach (var block in Graph.Blocks)
        {
            var state = ReplayEntry(_entry[block.Ordinal], _finallyEntry[block.Ordinal]);
            if (state is null)
                continue;
            var after = WalkBlock(block, state);
            if (ReplaysBranches)
                FollowBranches(block, after, null);
        }
    }

    /// <summary>
    /// The state on the edge where <paramref name="value"/> is <paramref name="sense"/>: boolean constants decide the
    /// edge, conversions, <c>!</c> and flow captures are taken apart, anything else goes to <see cref="RefineAtom"/>.
    /// </summary>
    protected TState? Refine(IOperation value, bool sense, TState state, int depth)
    {
        if (depth > MaxDepth)
            return state;
        if (value.ConstantValue.HasValue && value.ConstantValue.Value is bool constant)
            return constant == sense ? state : null;
        switch (value)
        {
            case IConversionOperation c:
                return Refine(c.Operand, sense, state, depth + 1);
            case IUnaryOperation { OperatorKind: UnaryOperatorKind.Not } not:
                return Refine(not.Operand, !sense, state, depth + 1);
            case IFlowCaptureReferenceOperation r:
                return Values.TryGetCaptured(r.Id, out var captured) && captured is not null
                    ? Refine(captured, sense, state, depth + 1)
                    : state;
            default:
                return RefineAtom(value, sense, state, depth);
        }
    }

    // ---- the walk -----------------------------------------------------------------------------------------------------

    private TState WalkBlock(BasicBlock block, TState state)
    {
        foreach (var op in block.Operations)
            state = Walk(op, state);
        if (block.BranchValue is not null)
            state = Walk(block.BranchValue, state);
        return state;
    }

    private TState Walk(IOperation operation, TState state)
    {
        if (operation is IFlowAnonymousFunctionOperation or IAnonymousFunctionOperation or ILocalFunctionOperation)
            return NestedFunction(operation, state);
        foreach (var child in operation.ChildOperations)
            state = Walk(child, state);
        return Transfer(operation, state);
    }

    // A catch or filter handler starts from any state inside its try block (an exception can come from anywhere).
    private static void ToHandlers(BasicBlock block, TState state, Action<int, TState> merge)
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
                    merge(handler.FirstBlockOrdinal, state);
            }
        }
    }

    // Follows the successors of a block; 'merge' is null during the replay, where only exits are reported.
    private void FollowBranches(BasicBlock block, TState state, Action<int, TState>? merge)
    {
        if (block.ConditionKind == ControlFlowConditionKind.None)
        {
            Follow(block, block.FallThroughSuccessor, state, state, merge);
            return;
        }
        bool jumpWhen = block.ConditionKind == ControlFlowConditionKind.WhenTrue;
        var taken = Branch(block.BranchValue!, jumpWhen, state);
        var fallen = Branch(block.BranchValue!, !jumpWhen, state);
        Follow(block, block.ConditionalSuccessor, taken, state, merge);
        Follow(block, block.FallThroughSuccessor, fallen, state, merge);
    }

    private void Follow(BasicBlock from, ControlFlowBranch? branch, TState? state, TState before, Action<int, TState>? merge)
    {
        if (branch is null || state is null)
            return;
        var after = ThroughFinally(branch, state);
        if (after is null)
            return;
        var dest = branch.Destination;
        if (dest is null)
            return;
        if (dest.Kind == BasicBlockKind.Exit)
        {
            if (merge is null)
            {
                var value = branch.Semantics == ControlFlowBranchSemantics.Return ? from.BranchValue : null;
                OnExit(value, value?.Syntax.Parent, before, after);
            }
            return;
        }
        merge?.Invoke(dest.Ordinal, after);
    }

    private TState? ThroughFinally(ControlFlowBranch branch, TState state)
    {
        TState? s = state;
        foreach (var region in branch.FinallyRegions)
        {
            s = RunFinally(region, s);
            if (s is null)
                return null;
        }
        return s;
    }

    // Runs a finally region from 'input' to its end (its own small fixed point, since it may branch); reports come from
    // the replay of the joined entry states, once.
    private TState? RunFinally(ControlFlowRegion region, TState input)
    {
        bool reporting = Reporting;
        Reporting = false;
        try
        {
            int first = region.FirstBlockOrdinal, last = region.LastBlockOrdinal;
            var local = new TState?[last - first + 1];
            var queue = new Queue<int>();
            local[0] = input;
            queue.Enqueue(first);
            TState? result = null;
            int steps = 0;
            while (queue.Count > 0)
            {
                if (++steps > MaxVisitsPerBlock * local.Length)
                {
                    _gaveUp = true;
                    return null;
                }
                int ordinal = queue.Dequeue();
                var block = Graph.Blocks[ordinal];
                var entry = local[ordinal - first]!;
                _finallyEntry[ordinal] = _finallyEntry[ordinal] is { } f ? Join(f, entry) : entry;
                var after = WalkBlock(block, entry);
                void Local(ControlFlowBranch? branch, TState? s)
                {
                    if (branch is null || s is null)
                        return;
                    if (branch.Semantics == ControlFlowBranchSemantics.StructuredExceptionHandling)
                    {
                        result = result is null ? s : Join(result, s);
                        return;
                    }
                    var dest = branch.Destination;
                    if (dest is null || dest.Ordinal < first || dest.Ordinal > last)
                        return;
                    var through = ThroughFinally(branch, s);
                    if (through is null)
                        return;
                    var old = local[dest.Ordinal - first];
                    var joined = old is null ? through : Join(old, through);
                    if (old is not null && Same(old, joined))
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
                    Local(block.ConditionalSuccessor, Branch(block.BranchValue!, jumpWhen, after));
                    Local(block.FallThroughSuccessor, Branch(block.BranchValue!, !jumpWhen, after));
                }
            }
            return result;
        }
        finally
        {
            Reporting = reporting;
        }
    }
}
