using System.Collections.Generic;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers.Flow;

/// <summary>
/// A small forward dataflow over one method's <see cref="ControlFlowGraph"/> for rules whose state is not the lock set
/// of <see cref="LockFlowAnalysis"/> (an mm reference held, the ownership of destination pages). The same graph walk:
/// operations in evaluation order, branch conditions path-sensitive through <see cref="Branch"/>, a <c>finally</c> run
/// with the state of each path that leaves through it, catch handlers entered from the join of their try block's
/// states; then one replay of the fixed point with <c>report</c> set, for the rule to report from.
/// </summary>
/// <typeparam name="TState">An immutable state with value equality.</typeparam>
internal abstract class ForwardFlow<TState>
    where TState : class
{
    private const int MaxVisitsPerBlock = 64;
    private const int MaxDepth = 16;

    private readonly Dictionary<CaptureId, IOperation?> _captures = new();
    private readonly Dictionary<ILocalSymbol, IOperation?> _singleAssigned = new(SymbolEqualityComparer.Default);
    private readonly Dictionary<CaptureId, ILocalSymbol?> _captureLocals = new();
    private TState?[] _entry = [];
    private TState?[] _finallyEntry = [];
    private bool _gaveUp;

    /// <summary>Creates the analysis of <paramref name="graph"/>.</summary>
    protected ForwardFlow(ControlFlowGraph graph)
    {
        Graph = graph;
    }

    /// <summary>The graph analysed.</summary>
    protected ControlFlowGraph Graph { get; }

    /// <summary>Whether the pass running is the final replay (report from transfer functions only then).</summary>
    protected bool Reporting { get; private set; }

    /// <summary>The state at method entry.</summary>
    protected abstract TState Entry { get; }

    /// <summary>The state where two paths meet.</summary>
    protected abstract TState Join(TState a, TState b);

    /// <summary>Whether two states are the same (the fixed point test).</summary>
    protected abstract bool Same(TState a, TState b);

    /// <summary>The effect of <paramref name="operation"/> (its operands were already walked).</summary>
    protected abstract TState Transfer(IOperation operation, TState state);

    /// <summary>The state on the edge where <paramref name="condition"/> is <paramref name="sense"/>; null if that edge cannot be taken.</summary>
    protected virtual TState? Branch(IOperation condition, bool sense, TState state) => state;

    /// <summary>A path leaves the method normally (return or end of body), with the state after every <c>finally</c>.</summary>
    protected virtual void OnExit(IOperation? returnedValue, SyntaxNode? syntax, TState state)
    {
    }

    /// <summary>Solves and replays. False if the graph did not settle within the work bound (nothing was reported).</summary>
    public bool Run(CancellationToken cancellation)
    {
        Prepass();
        int n = Graph.Blocks.Length;
        _entry = new TState?[n];
        _finallyEntry = new TState?[n];
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
        Reporting = true;
        foreach (var block in Graph.Blocks)
        {
            var state = _entry[block.Ordinal] ?? _finallyEntry[block.Ordinal];
            if (state is null)
                continue;
            var after = WalkBlock(block, state);
            FollowBranches(block, after, null);
        }
        return true;
    }

    /// <summary>
    /// The value behind <paramref name="operation"/>: conversions stripped, flow captures and locals assigned once
    /// followed to what was assigned.
    /// </summary>
    protected IOperation Resolve(IOperation operation)
    {
        for (int depth = 0; depth < MaxDepth; depth++)
        {
            switch (operation)
            {
                case IConversionOperation c:
                    operation = c.Operand;
                    continue;
                case IParenthesizedOperation p:
                    operation = p.Operand;
                    continue;
                case IFlowCaptureReferenceOperation r when _captures.TryGetValue(r.Id, out var captured) && captured is not null:
                    operation = captured;
                    continue;
                case ILocalReferenceOperation l when _singleAssigned.TryGetValue(l.Local, out var assigned) && assigned is not null:
                    operation = assigned;
                    continue;
                default:
                    return operation;
            }
        }
        return operation;
    }

    /// <summary><paramref name="operation"/> and its descendants, with flow-capture references followed to the value captured.</summary>
    protected IEnumerable<IOperation> Expand(IOperation operation)
    {
        var pending = new Stack<(IOperation Op, int Depth)>();
        pending.Push((operation, 0));
        while (pending.Count > 0)
        {
            var (op, depth) = pending.Pop();
            yield return op;
            if (op is IFlowCaptureReferenceOperation r && depth < MaxDepth && _captures.TryGetValue(r.Id, out var captured) && captured is not null)
                pending.Push((captured, depth + 1));
            foreach (var child in op.ChildOperations)
                pending.Push((child, depth));
        }
    }

    /// <summary>The local a flow capture was assigned to (<c>var err = cond ? A() : B();</c>), if the capture is read once into a local.</summary>
    protected ILocalSymbol? LocalHolding(IOperation value)
    {
        for (var parent = value.Parent; parent is not null; parent = parent.Parent)
        {
            switch (parent)
            {
                case IConversionOperation or IParenthesizedOperation:
                    continue;
                case ISimpleAssignmentOperation { Target: ILocalReferenceOperation target }:
                    return target.Local;
                case IVariableInitializerOperation { Parent: IVariableDeclaratorOperation declarator }:
                    return declarator.Symbol;
                case IFlowCaptureOperation capture:
                    return _captureLocals.TryGetValue(capture.Id, out var local) ? local : null;
                default:
                    return null;
            }
        }
        return null;
    }

    // ---- pre-pass: captures and single-assignment locals ---------------------------------------------------------------

    private void Prepass()
    {
        var multiply = new HashSet<ILocalSymbol>(SymbolEqualityComparer.Default);
        foreach (var block in Graph.Blocks)
        {
            foreach (var op in block.Operations)
                Scan(op, multiply);
            if (block.BranchValue is not null)
                Scan(block.BranchValue, multiply);
        }
        foreach (var local in multiply)
            _singleAssigned[local] = null;
    }

    private void Scan(IOperation root, HashSet<ILocalSymbol> multiply)
    {
        foreach (var op in root.DescendantsAndSelf())
        {
            switch (op)
            {
                case IFlowCaptureOperation capture:
                    _captures[capture.Id] = _captures.TryGetValue(capture.Id, out var existing) && !ReferenceEquals(existing, capture.Value)
                        ? null
                        : capture.Value;
                    break;
                case ISimpleAssignmentOperation { Target: ILocalReferenceOperation target } assign:
                    if (_singleAssigned.ContainsKey(target.Local))
                        multiply.Add(target.Local);
                    else
                        _singleAssigned[target.Local] = assign.Value;
                    if (Strip(assign.Value) is IFlowCaptureReferenceOperation read)
                        _captureLocals[read.Id] = _captureLocals.ContainsKey(read.Id) ? null : target.Local;
                    break;
                case ICompoundAssignmentOperation { Target: ILocalReferenceOperation target }:
                    multiply.Add(target.Local);
                    break;
                case IIncrementOrDecrementOperation { Target: ILocalReferenceOperation target }:
                    multiply.Add(target.Local);
                    break;
                case IArgumentOperation { Value: ILocalReferenceOperation byRef } arg when arg.Parameter?.RefKind is RefKind.Ref or RefKind.Out:
                    multiply.Add(byRef.Local);
                    break;
                case IDeclarationExpressionOperation { Expression: ILocalReferenceOperation declared }:
                    multiply.Add(declared.Local);
                    break;
                case IDeconstructionAssignmentOperation:
                    foreach (var l in op.Descendants())
                    {
                        if (l is ILocalReferenceOperation lr)
                            multiply.Add(lr.Local);
                    }
                    break;
            }
        }
    }

    private static IOperation Strip(IOperation operation)
    {
        while (operation is IConversionOperation c)
            operation = c.Operand;
        return operation;
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
            return state;   // runs later, on its own graph
        foreach (var child in operation.ChildOperations)
            state = Walk(child, state);
        return Transfer(operation, state);
    }

    private void ToHandlers(BasicBlock block, TState state, System.Action<int, TState> merge)
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

    private void FollowBranches(BasicBlock block, TState state, System.Action<int, TState>? merge)
    {
        if (block.ConditionKind == ControlFlowConditionKind.None)
        {
            Follow(block, block.FallThroughSuccessor, state, merge);
            return;
        }
        bool jumpWhen = block.ConditionKind == ControlFlowConditionKind.WhenTrue;
        Follow(block, block.ConditionalSuccessor, Branch(block.BranchValue!, jumpWhen, state), merge);
        Follow(block, block.FallThroughSuccessor, Branch(block.BranchValue!, !jumpWhen, state), merge);
    }

    private void Follow(BasicBlock from, ControlFlowBranch? branch, TState? state, System.Action<int, TState>? merge)
    {
        if (branch is null || state is null)
            return;
        TState? after = state;
        foreach (var region in branch.FinallyRegions)
        {
            after = RunFinally(region, after);
            if (after is null)
                return;
        }
        var dest = branch.Destination;
        if (dest is null)
            return;
        if (dest.Kind == BasicBlockKind.Exit)
        {
            if (merge is null)
            {
                var value = branch.Semantics == ControlFlowBranchSemantics.Return ? from.BranchValue : null;
                OnExit(value, value?.Syntax.Parent, after);
            }
            return;
        }
        merge?.Invoke(dest.Ordinal, after);
    }

    // Runs a finally region from 'input' to its end (its own small fixed point; reports come from the replay of the
    // joined entry states, once).
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
                    TState? through = s;
                    foreach (var nested in branch.FinallyRegions)
                    {
                        through = RunFinally(nested, through);
                        if (through is null)
                            return;
                    }
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
