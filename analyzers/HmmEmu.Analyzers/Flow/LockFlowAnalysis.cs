using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers.Flow;

/// <summary>
/// A forward dataflow over one method's <see cref="ControlFlowGraph"/> that tracks the locks held (may and must), the
/// blockability of the invalidation range, <c>SetSeq</c> and owner-skip tests, then replays the fixed point once and
/// tells a <see cref="FlowObserver"/> what happens where.
/// </summary>
/// <remarks>
/// <para>Locks are identified by the symbol of the expression locked (field, property, local, parameter): two
/// instances of one field are one lock, as lockdep files instances under one class. Acquire and release come from the
/// HmmEmu.Annotations attributes on the kernel API (<c>[AcquiresLock]</c>, <c>[AcquiresOnSuccess]</c>,
/// <c>[ReleasesLock]</c>) and from built-in tables for <c>Monitor</c>, <c>Lock</c> and <c>ReaderWriterLockSlim</c>; a
/// scope returned by an acquiring call (<c>using (m.Scoped())</c>) releases when disposed.</para>
/// <para>Branches are path-sensitive for the tests drivers write: <c>if (!m.TryLock()) return false;</c> holds the lock
/// only on the success edge, <c>if (!range.Blockable)</c> splits blockable from non-blockable, and
/// <c>lock</c>-statement lowering (<c>Monitor.Enter(o, ref taken)</c> ... <c>if (taken) Monitor.Exit(o)</c>) is
/// understood. A <c>finally</c> is replayed for each branch that leaves through it, so its effect (an unlock) is applied
/// with that path's state; catch handlers start from the join of every state inside their try block.</para>
/// </remarks>
internal sealed class LockFlowAnalysis
{
    // A bound on work per block: the lattice is finite, but a pathological graph must not stall the IDE.
    private const int MaxVisitsPerBlock = 64;
    private const int MaxDepth = 16;

    private readonly ControlFlowGraph _cfg;
    private readonly KnownSymbols _known;
    private readonly CancellationToken _cancellation;
    private readonly Dictionary<CaptureId, IOperation?> _captures = new();
    private readonly Dictionary<ILocalSymbol, IOperation?> _singleAssigned = new(SymbolEqualityComparer.Default);
    private readonly Dictionary<ILocalSymbol, IOperation> _takenLocals = new(SymbolEqualityComparer.Default);
    private readonly FlowState?[] _entry;
    private readonly FlowState?[] _finallyEntry;
    private readonly int[] _visits;
    private readonly Queue<int> _work = new();
    private readonly bool[] _queued;
    private bool _gaveUp;

    private LockFlowAnalysis(ControlFlowGraph cfg, KnownSymbols known, CancellationToken cancellation)
    {
        _cfg = cfg;
        _known = known;
        _cancellation = cancellation;
        int n = cfg.Blocks.Length;
        _entry = new FlowState?[n];
        _finallyEntry = new FlowState?[n];
        _visits = new int[n];
        _queued = new bool[n];
    }

    /// <summary>
    /// Runs the analysis on <paramref name="cfg"/> and replays it into <paramref name="observer"/>. Returns false (having
    /// told the observer nothing) if the graph was too irregular to settle within the work bound.
    /// </summary>
    public static bool Analyze(ControlFlowGraph cfg, KnownSymbols known, FlowObserver observer, CancellationToken cancellation)
    {
        var analysis = new LockFlowAnalysis(cfg, known, cancellation);
        analysis.Prepass();
        if (!analysis.Solve())
            return false;
        observer.Analysis = analysis;
        analysis.Replay(observer);
        return true;
    }

    /// <summary>The lock that the expression <paramref name="operation"/> denotes, if it has a stable symbol.</summary>
    public ISymbol? KeyOf(IOperation? operation)
    {
        for (int depth = 0; depth < MaxDepth && operation is not null; depth++)
        {
            switch (operation)
            {
                case IConversionOperation c:
                    operation = c.Operand;
                    continue;
                case IFlowCaptureReferenceOperation r:
                    if (!_captures.TryGetValue(r.Id, out operation))
                        return null;
                    continue;
                case IFieldReferenceOperation f:
                    return f.Field.OriginalDefinition;
                case IPropertyReferenceOperation p:
                    return p.Property.OriginalDefinition;
                case ILocalReferenceOperation l:
                    if (_singleAssigned.TryGetValue(l.Local, out var v) && v is IFieldReferenceOperation or IPropertyReferenceOperation or IParameterReferenceOperation)
                    {
                        operation = v;
                        continue;
                    }
                    return l.Local;
                case IParameterReferenceOperation p:
                    return p.Parameter;
                case IInstanceReferenceOperation i:
                    return i.Type;
                default:
                    return null;
            }
        }
        return null;
    }

    // ---- pre-pass: flow captures, single-assignment locals, lock-taken flags ----------------------------------------

    private void Prepass()
    {
        var multiply = new HashSet<ILocalSymbol>(SymbolEqualityComparer.Default);
        foreach (var block in _cfg.Blocks)
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
                    break;
                case ICompoundAssignmentOperation { Target: ILocalReferenceOperation target }:
                    multiply.Add(target.Local);
                    break;
                case IIncrementOrDecrementOperation { Target: ILocalReferenceOperation target }:
                    multiply.Add(target.Local);
                    break;
                case IDeconstructionAssignmentOperation:
                    foreach (var l in op.Descendants())
                    {
                        if (l is ILocalReferenceOperation lr)
                            multiply.Add(lr.Local);
                    }
                    break;
                case IArgumentOperation { Value: ILocalReferenceOperation byRef } arg when arg.Parameter?.RefKind is RefKind.Ref or RefKind.Out:
                    multiply.Add(byRef.Local);
                    if (arg.Parent is IInvocationOperation inv && arg.Parameter.Type.SpecialType == SpecialType.System_Boolean
                        && _known.FactsOf(inv.TargetMethod).Lock == LockEffect.Acquire)
                    {
                        // Monitor.Enter(obj, ref taken): the lock is held exactly when 'taken' is true.
                        foreach (var other in inv.Arguments)
                        {
                            if (other.Parameter?.Name == _known.FactsOf(inv.TargetMethod).LockTarget)
                                _takenLocals[byRef.Local] = other.Value;
                        }
                    }
                    break;
                case IDeclarationExpressionOperation { Expression: ILocalReferenceOperation declared }:
                    multiply.Add(declared.Local);
                    break;
            }
        }
    }

    // ---- the fixed point ---------------------------------------------------------------------------------------------

    private bool Solve()
    {
        Merge(0, FlowState.Entry);
        while (_work.Count > 0)
        {
            _cancellation.ThrowIfCancellationRequested();
            int ordinal = _work.Dequeue();
            _queued[ordinal] = false;
            if (++_visits[ordinal] > MaxVisitsPerBlock)
                return false;
            var block = _cfg.Blocks[ordinal];
            var state = _entry[ordinal]!;
            var after = WalkOperations(block, state, null);
            PropagateToHandlers(block, FlowState.Join(state, after)!);
            FollowBranches(block, after, null, (dest, s) => Merge(dest, s));
            if (_gaveUp)
                return false;
        }
        return true;
    }

    private void Replay(FlowObserver observer)
    {
        foreach (var block in _cfg.Blocks)
        {
            var state = _entry[block.Ordinal] ?? _finallyEntry[block.Ordinal];
            if (state is null)
                continue;
            var after = WalkOperations(block, state, observer);
            FollowBranches(block, after, observer, null);
        }
    }

    private void Merge(int ordinal, FlowState state)
    {
        var old = _entry[ordinal];
        var joined = FlowState.Join(old, state)!;
        if (old is not null && old.Equals(joined))
            return;
        _entry[ordinal] = joined;
        if (!_queued[ordinal])
        {
            _queued[ordinal] = true;
            _work.Enqueue(ordinal);
        }
    }

    // A catch or filter handler starts from any state inside its try block (an exception can come from anywhere).
    private void PropagateToHandlers(BasicBlock block, FlowState state)
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

    private FlowState WalkOperations(BasicBlock block, FlowState state, FlowObserver? observer)
    {
        foreach (var op in block.Operations)
            state = Walk(op, state, observer);
        if (block.BranchValue is not null)
            state = Walk(block.BranchValue, state, observer);
        return state;
    }

    // Follows the successors of a block; 'merge' is null during the replay, where only returns are reported.
    private void FollowBranches(BasicBlock block, FlowState state, FlowObserver? observer, Action<int, FlowState>? merge)
    {
        if (block.ConditionKind == ControlFlowConditionKind.None)
        {
            Follow(block, block.FallThroughSuccessor, state, state, observer, merge);
            return;
        }
        bool jumpWhen = block.ConditionKind == ControlFlowConditionKind.WhenTrue;
        var taken = Condition(block.BranchValue!, jumpWhen, state, observer, 0);
        var fallen = Condition(block.BranchValue!, !jumpWhen, state, observer, 0);
        Follow(block, block.ConditionalSuccessor, taken, state, observer, merge);
        Follow(block, block.FallThroughSuccessor, fallen, state, observer, merge);
    }

    private void Follow(BasicBlock from, ControlFlowBranch? branch, FlowState? state, FlowState before, FlowObserver? observer, Action<int, FlowState>? merge)
    {
        if (branch is null || state is null)
            return;
        var after = ApplyFinally(branch, state);
        if (after is null)
            return;
        var dest = branch.Destination;
        if (dest is null)
            return;
        if (dest.Kind == BasicBlockKind.Exit)
        {
            if (merge is null && observer is not null)
            {
                var value = branch.Semantics == ControlFlowBranchSemantics.Return ? from.BranchValue : null;
                observer.OnReturn(value, value?.Syntax.Parent, before, after);
            }
            return;
        }
        merge?.Invoke(dest.Ordinal, after);
    }

    private FlowState? ApplyFinally(ControlFlowBranch branch, FlowState state)
    {
        FlowState? s = state;
        foreach (var region in branch.FinallyRegions)
        {
            s = RunFinally(region, s);
            if (s is null)
                return null;
        }
        return s;
    }

    // Runs a finally region from 'input' to its end, with a small fixed point of its own (it may branch).
    private FlowState? RunFinally(ControlFlowRegion region, FlowState input)
    {
        int first = region.FirstBlockOrdinal, last = region.LastBlockOrdinal;
        var local = new FlowState?[last - first + 1];
        var queue = new Queue<int>();
        local[0] = input;
        queue.Enqueue(first);
        FlowState? result = null;
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
            _finallyEntry[ordinal] = FlowState.Join(_finallyEntry[ordinal], entry);
            var after = WalkOperations(block, entry, null);
            void Local(ControlFlowBranch? branch, FlowState? s)
            {
                if (branch is null || s is null)
                    return;
                if (branch.Semantics == ControlFlowBranchSemantics.StructuredExceptionHandling)
                {
                    result = FlowState.Join(result, s);
                    return;
                }
                var dest = branch.Destination;
                if (dest is null || dest.Ordinal < first || dest.Ordinal > last)
                    return;
                var through = ApplyFinally(branch, s);
                if (through is null)
                    return;
                var old = local[dest.Ordinal - first];
                var joined = FlowState.Join(old, through)!;
                if (old is not null && old.Equals(joined))
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
                Local(block.ConditionalSuccessor, Condition(block.BranchValue!, jumpWhen, after, null, 0));
                Local(block.FallThroughSuccessor, Condition(block.BranchValue!, !jumpWhen, after, null, 0));
            }
        }
        return result;
    }

    // ---- transfer over one operation tree, in evaluation order -------------------------------------------------------

    private FlowState Walk(IOperation operation, FlowState state, FlowObserver? observer)
    {
        if (operation is IFlowAnonymousFunctionOperation or IAnonymousFunctionOperation or ILocalFunctionOperation)
            return state;   // runs later, on its own graph
        foreach (var child in operation.ChildOperations)
            state = Walk(child, state, observer);
        observer?.OnOperation(operation, state);
        switch (operation)
        {
            case IInvocationOperation invocation:
                return Invocation(invocation, state, observer);
            case IPropertyReferenceOperation property when observer is not null && _known.IsBlockingProperty(property.Property):
                observer.OnCall(new FlowCall(property, property.Property, CalleeFacts.Nothing, BlockingKind.BlockingWait, null), state);
                return state;
            case IObjectCreationOperation { Constructor: { } ctor } creation when observer is not null:
                var facts = _known.FactsOf(ctor);
                if (facts.IsInteresting)
                    observer.OnCall(new FlowCall(creation, ctor, facts, EffectiveBlocking(creation.Arguments, facts), null), state);
                return state;
            default:
                return state;
        }
    }

    private FlowState Invocation(IInvocationOperation invocation, FlowState state, FlowObserver? observer)
    {
        var method = invocation.TargetMethod;
        var facts = _known.FactsOf(method);
        if (KnownSymbols.IsMethod(method, _known.RangeFault))
            state = state.WithFault();
        else if (KnownSymbols.IsMethod(method, _known.ReadBegin))
            state = state.WithSnapshotRestarted();
        if (facts.Lock == LockEffect.None && invocation.Instance is not null && method.Name == "Dispose" && method.Parameters.Length == 0)
        {
            var scope = ScopeKeyOf(invocation.Instance);
            return scope is null ? state : state.Release(scope);
        }
        if (!facts.IsInteresting)
            return state;
        var key = facts.Lock == LockEffect.None ? null : ResolveLock(invocation, facts.LockTarget);
        observer?.OnCall(new FlowCall(invocation, method, facts, EffectiveBlocking(invocation.Arguments, facts), key), state);
        if (key is not null)
        {
            if (facts.Lock == LockEffect.Acquire)
            {
                observer?.OnAcquire(key, invocation, state);
                state = state.Acquire(key, invocation);
            }
            else if (facts.Lock == LockEffect.Release)
            {
                state = state.Release(key);
            }
        }
        if (facts.IsSetSeq)
            state = state.WithSetSeq();
        if ((facts.Device & DeviceEffect.Zap) != 0)
            state = state.WithZap();
        if ((facts.Device & DeviceEffect.Flush) != 0)
            state = state.WithFlush();
        return state;
    }

    private static BlockingKind EffectiveBlocking(System.Collections.Immutable.ImmutableArray<IArgumentOperation> arguments, CalleeFacts facts)
    {
        if (facts.ReclaimFlagsParameter is null)
            return facts.Blocking;
        foreach (var arg in arguments)
        {
            if (arg.Parameter?.Name != facts.ReclaimFlagsParameter)
                continue;
            var constant = arg.Value.ConstantValue;
            if (constant.HasValue && constant.Value is not null && (ToInt64(constant.Value) & facts.ReclaimFlags) == 0)
                return BlockingKind.None;
        }
        return facts.Blocking;
    }

    private static long ToInt64(object value) => value switch
    {
        uint u => u,
        ulong ul => unchecked((long)ul),
        int i => i,
        long l => l,
        ushort us => us,
        short sh => sh,
        byte b => b,
        sbyte sb => sb,
        _ => -1,
    };

    /// <summary>The lock a call with <c>[AcquiresLock]</c>-style <paramref name="target"/> acts on.</summary>
    private ISymbol? ResolveLock(IInvocationOperation invocation, string? target)
    {
        if (target is null)
            return KeyOf(invocation.Instance);
        foreach (var arg in invocation.Arguments)
        {
            if (arg.Parameter?.Name == target)
                return KeyOf(arg.Value);
        }
        return KnownSymbols.FindFieldOrProperty(invocation.TargetMethod.ContainingType, target)?.OriginalDefinition;
    }

    /// <summary>The lock held by a scope value (the result of an acquiring call such as <c>KMutex.Scoped()</c>), if any.</summary>
    public ISymbol? ScopeKeyOf(IOperation value)
    {
        for (int depth = 0; depth < MaxDepth; depth++)
        {
            switch (value)
            {
                case IConversionOperation c:
                    value = c.Operand;
                    continue;
                case IFlowCaptureReferenceOperation r:
                    if (!_captures.TryGetValue(r.Id, out var captured) || captured is null)
                        return null;
                    value = captured;
                    continue;
                case ILocalReferenceOperation l:
                    if (!_singleAssigned.TryGetValue(l.Local, out var assigned) || assigned is null)
                        return null;
                    value = assigned;
                    continue;
                case IInvocationOperation inv when !inv.TargetMethod.ReturnsVoid:
                    var facts = _known.FactsOf(inv.TargetMethod);
                    return facts.Lock == LockEffect.Acquire ? ResolveLock(inv, facts.LockTarget) : null;
                default:
                    return null;
            }
        }
        return null;
    }

    // ---- branch conditions -------------------------------------------------------------------------------------------

    // The state on the edge where 'value' evaluated to 'sense'; null if that edge cannot be taken.
    private FlowState? Condition(IOperation value, bool sense, FlowState state, FlowObserver? observer, int depth)
    {
        if (depth > MaxDepth)
            return state;
        if (value.ConstantValue.HasValue && value.ConstantValue.Value is bool constant)
            return constant == sense ? state : null;
        switch (value)
        {
            case IConversionOperation c:
                return Condition(c.Operand, sense, state, observer, depth + 1);
            case IUnaryOperation { OperatorKind: UnaryOperatorKind.Not } not:
                return Condition(not.Operand, !sense, state, observer, depth + 1);
            case IFlowCaptureReferenceOperation r:
                return _captures.TryGetValue(r.Id, out var captured) && captured is not null
                    ? Condition(captured, sense, state, observer, depth + 1)
                    : state;
            case ILocalReferenceOperation l:
                if (_takenLocals.TryGetValue(l.Local, out var lockedValue))
                {
                    var key = KeyOf(lockedValue);
                    return !sense && key is not null ? state.Release(key) : state;
                }
                return _singleAssigned.TryGetValue(l.Local, out var assigned) && assigned is not null
                    ? Condition(assigned, sense, state, observer, depth + 1)
                    : state;
            case IIsNullOperation isNull:
                // A lock scope is a value the acquiring call returned: never null.
                return sense && ScopeKeyOf(isNull.Operand) is not null ? null : state;
            case IInvocationOperation invocation:
                return InvocationCondition(invocation, sense, state, observer);
            case IPropertyReferenceOperation property when IsProperty(property, _known.RangeBlockable):
                return state.WithBlockable(sense ? Tri.True : Tri.False);
            case IBinaryOperation { OperatorKind: BinaryOperatorKind.GreaterThan } greater when !sense && IsZero(greater.RightOperand) && IsZapResult(greater.LeftOperand):
                return state.WithNothingZapped();
            case IBinaryOperation binary when binary.OperatorKind is BinaryOperatorKind.Equals or BinaryOperatorKind.NotEquals:
                return Comparison(binary.LeftOperand, binary.RightOperand, (binary.OperatorKind == BinaryOperatorKind.Equals) == sense, state, observer, depth);
            case IIsPatternOperation { Pattern: IConstantPatternOperation constantPattern } isPattern:
                return Comparison(isPattern.Value, constantPattern.Value, sense, state, observer, depth);
            case IIsPatternOperation { Pattern: INegatedPatternOperation { Pattern: IConstantPatternOperation negated } } isNotPattern:
                return Comparison(isNotPattern.Value, negated.Value, !sense, state, observer, depth);
            default:
                return state;
        }
    }

    private FlowState InvocationCondition(IInvocationOperation invocation, bool sense, FlowState state, FlowObserver? observer)
    {
        if (!sense && KnownSymbols.IsMethod(invocation.TargetMethod, _known.ReadRetry))
            return state.WithRetryChecked();
        var facts = _known.FactsOf(invocation.TargetMethod);
        if (facts.Lock == LockEffect.AcquireOnSuccess)
        {
            if (!sense)
                return state;
            var key = ResolveLock(invocation, facts.LockTarget);
            if (key is null)
                return state;
            observer?.OnAcquire(key, invocation, state);
            return state.Acquire(key, invocation);
        }
        if (sense && invocation.TargetMethod.Name is "ReferenceEquals" or "Equals")
        {
            if (IsOwner(invocation.Instance))
                return state.WithOwnerMatched();
            foreach (var arg in invocation.Arguments)
            {
                if (IsOwner(arg.Value))
                    return state.WithOwnerMatched();
            }
        }
        return state;
    }

    // 'equal' is whether the two operands are equal on this edge.
    private FlowState? Comparison(IOperation left, IOperation right, bool equal, FlowState state, FlowObserver? observer, int depth)
    {
        left = Strip(left);
        right = Strip(right);
        if (right.ConstantValue.HasValue && right.ConstantValue.Value is bool rb && left.Type?.SpecialType == SpecialType.System_Boolean)
            return Condition(left, equal == rb, state, observer, depth + 1);
        if (left.ConstantValue.HasValue && left.ConstantValue.Value is bool lb && right.Type?.SpecialType == SpecialType.System_Boolean)
            return Condition(right, equal == lb, state, observer, depth + 1);
        if (equal && (IsZero(right) && IsZapResult(left) || IsZero(left) && IsZapResult(right)))
            return state.WithNothingZapped();
        if (IsRangeProperty(left, _known.RangeEvent) || IsRangeProperty(right, _known.RangeEvent))
        {
            var other = IsRangeProperty(left, _known.RangeEvent) ? right : left;
            if (!other.ConstantValue.HasValue || _known.UnmapEventValue is null)
                return state;
            bool isUnmap = Equals(other.ConstantValue.Value, _known.UnmapEventValue);
            // Only the OOM reaper sends non-blockable ranges, and always as Unmap: any other event is blockable.
            return equal != isUnmap ? state.WithBlockable(Tri.True) : state;
        }
        if (equal && (IsOwner(left) && !IsNullConstant(right) || IsOwner(right) && !IsNullConstant(left)))
            return state.WithOwnerMatched();
        return state;
    }

    private static bool IsZero(IOperation operation) =>
        Strip(operation).ConstantValue is { HasValue: true, Value: { } v } && ToInt64(v) == 0;

    // The count a [DeviceZap] call returned (directly, or through a single-assigned local or a flow capture).
    private bool IsZapResult(IOperation operation)
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
                case ILocalReferenceOperation l when _singleAssigned.TryGetValue(l.Local, out var assigned) && assigned is not null:
                    operation = assigned;
                    continue;
                case IInvocationOperation inv:
                    return (_known.FactsOf(inv.TargetMethod).Device & DeviceEffect.Zap) != 0 && !inv.TargetMethod.ReturnsVoid;
                default:
                    return false;
            }
        }
        return false;
    }

    private bool IsOwner(IOperation? operation) => operation is not null && IsRangeProperty(Strip(operation), _known.RangeOwner);

    private bool IsRangeProperty(IOperation operation, IPropertySymbol? property)
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
                case ILocalReferenceOperation l when _singleAssigned.TryGetValue(l.Local, out var assigned) && assigned is not null:
                    operation = assigned;
                    continue;
                case IPropertyReferenceOperation p:
                    return IsProperty(p, property);
                default:
                    return false;
            }
        }
        return false;
    }

    private static bool IsProperty(IPropertyReferenceOperation reference, IPropertySymbol? property) =>
        property is not null && SymbolEqualityComparer.Default.Equals(reference.Property.OriginalDefinition, property);

    private static bool IsNullConstant(IOperation operation) => operation.ConstantValue is { HasValue: true, Value: null };

    private static IOperation Strip(IOperation operation)
    {
        while (operation is IConversionOperation c)
            operation = c.Operand;
        return operation;
    }
}
