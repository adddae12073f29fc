using System.Collections.Generic;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using static HmmEmu.Analyzers.Flow.Operands;

namespace HmmEmu.Analyzers.Flow;

/// <summary>
/// A forward dataflow over one method's <see cref="ControlFlowGraph"/> that tracks the locks held (may and must), the
/// blockability of the invalidation range, <c>SetSeq</c> and owner-skip tests, then replays the fixed point once and
/// tells a <see cref="FlowObserver"/> what happens where. The graph walk is <see cref="ForwardFlow{TState}"/>'s; this
/// class is the lock rules' transfer functions and branch tests.
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
internal sealed class LockFlowAnalysis : ForwardFlow<FlowState>
{
    private const int MaxDepth = 16;

    private readonly KnownSymbols _known;
    private readonly FlowObserver _observer;
    private readonly Dictionary<ILocalSymbol, IOperation> _takenLocals = new(SymbolEqualityComparer.Default);

    private LockFlowAnalysis(ControlFlowGraph cfg, KnownSymbols known, FlowObserver observer)
        : base(cfg)
    {
        _known = known;
        _observer = observer;
        FindTakenFlags();
    }

    /// <inheritdoc/>
    protected override FlowState Entry => FlowState.Entry;

    // The observer hears the replay only (never a finally run, never the solve).
    private FlowObserver? Observer => Reporting ? _observer : null;

    /// <summary>
    /// Runs the analysis on <paramref name="cfg"/> and replays it into <paramref name="observer"/>. Returns false (having
    /// told the observer nothing) if the graph was too irregular to settle within the work bound.
    /// </summary>
    public static bool Analyze(ControlFlowGraph cfg, KnownSymbols known, FlowObserver observer, CancellationToken cancellation)
    {
        var analysis = new LockFlowAnalysis(cfg, known, observer);
        if (!analysis.Solve(cancellation))
            return false;
        observer.Analysis = analysis;
        analysis.Replay();
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
                    if (!Values.TryGetCaptured(r.Id, out operation))
                        return null;
                    continue;
                case IFieldReferenceOperation f:
                    return f.Field.OriginalDefinition;
                case IPropertyReferenceOperation p:
                    return p.Property.OriginalDefinition;
                case ILocalReferenceOperation l:
                    if (Values.TryGetSingleAssigned(l.Local, out var v) && v is IFieldReferenceOperation or IPropertyReferenceOperation or IParameterReferenceOperation)
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

    /// <inheritdoc/>
    protected override FlowState Join(FlowState a, FlowState b) => FlowState.Join(a, b)!;

    /// <inheritdoc/>
    protected override bool Same(FlowState a, FlowState b) => a.Equals(b);

    /// <inheritdoc/>
    protected override void OnExit(IOperation? returnedValue, SyntaxNode? syntax, FlowState before, FlowState after) =>
        _observer.OnReturn(returnedValue, syntax, before, after);

    // Monitor.Enter(obj, ref taken): the lock is held exactly when 'taken' is true.
    private void FindTakenFlags()
    {
        foreach (var root in GraphValues.RootsOf(Graph))
        {
            foreach (var op in root.DescendantsAndSelf())
            {
                if (op is not IArgumentOperation { Value: ILocalReferenceOperation byRef } arg || arg.Parameter?.RefKind is not (RefKind.Ref or RefKind.Out))
                    continue;
                if (arg.Parent is IInvocationOperation inv && arg.Parameter.Type.SpecialType == SpecialType.System_Boolean
                    && _known.FactsOf(inv.TargetMethod).Lock == LockEffect.Acquire)
                {
                    foreach (var other in inv.Arguments)
                    {
                        if (other.Parameter?.Name == _known.FactsOf(inv.TargetMethod).LockTarget)
                            _takenLocals[byRef.Local] = other.Value;
                    }
                }
            }
        }
    }

    // ---- transfer over one operation, in evaluation order ------------------------------------------------------------

    /// <inheritdoc/>
    protected override FlowState Transfer(IOperation operation, FlowState state)
    {
        var observer = Observer;
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
        if (Values.Resolve(value) is not IInvocationOperation { TargetMethod.ReturnsVoid: false } inv)
            return null;
        var facts = _known.FactsOf(inv.TargetMethod);
        return facts.Lock == LockEffect.Acquire ? ResolveLock(inv, facts.LockTarget) : null;
    }

    // ---- branch conditions -------------------------------------------------------------------------------------------

    /// <inheritdoc/>
    protected override FlowState? Branch(IOperation condition, bool sense, FlowState state) => Refine(condition, sense, state, 0);

    /// <inheritdoc/>
    protected override FlowState? RefineAtom(IOperation value, bool sense, FlowState state, int depth)
    {
        var observer = Observer;
        switch (value)
        {
            case ILocalReferenceOperation l:
                if (_takenLocals.TryGetValue(l.Local, out var lockedValue))
                {
                    var key = KeyOf(lockedValue);
                    return !sense && key is not null ? state.Release(key) : state;
                }
                return Values.TryGetSingleAssigned(l.Local, out var assigned) && assigned is not null
                    ? Refine(assigned, sense, state, depth + 1)
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
                return Comparison(binary.LeftOperand, binary.RightOperand, (binary.OperatorKind == BinaryOperatorKind.Equals) == sense, state, depth);
            case IIsPatternOperation { Pattern: IConstantPatternOperation constantPattern } isPattern:
                return Comparison(isPattern.Value, constantPattern.Value, sense, state, depth);
            case IIsPatternOperation { Pattern: INegatedPatternOperation { Pattern: IConstantPatternOperation negated } } isNotPattern:
                return Comparison(isNotPattern.Value, negated.Value, !sense, state, depth);
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
    private FlowState? Comparison(IOperation left, IOperation right, bool equal, FlowState state, int depth)
    {
        left = Strip(left);
        right = Strip(right);
        if (right.ConstantValue.HasValue && right.ConstantValue.Value is bool rb && left.Type?.SpecialType == SpecialType.System_Boolean)
            return Refine(left, equal == rb, state, depth + 1);
        if (left.ConstantValue.HasValue && left.ConstantValue.Value is bool lb && right.Type?.SpecialType == SpecialType.System_Boolean)
            return Refine(right, equal == lb, state, depth + 1);
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

    // The count a [DeviceZap] call returned (directly, or through a single-assigned local or a flow capture).
    private bool IsZapResult(IOperation operation) =>
        Values.Resolve(operation) is IInvocationOperation inv && (_known.FactsOf(inv.TargetMethod).Device & DeviceEffect.Zap) != 0 && !inv.TargetMethod.ReturnsVoid;

    private bool IsOwner(IOperation? operation) => operation is not null && IsRangeProperty(Strip(operation), _known.RangeOwner);

    private bool IsRangeProperty(IOperation operation, IPropertySymbol? property) =>
        Values.Resolve(operation) is IPropertyReferenceOperation p && IsProperty(p, property);

    private static bool IsProperty(IPropertyReferenceOperation reference, IPropertySymbol? property) =>
        property is not null && SymbolEqualityComparer.Default.Equals(reference.Property.OriginalDefinition, property);
}
