using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers.Flow;

/// <summary>
/// What one <see cref="ControlFlowGraph"/> says about its values before any dataflow runs: the value of each flow capture
/// (null where a capture is assigned more than one value), the value of each local assigned exactly once, and the local a
/// capture is read into. The dataflow engines resolve operands through it.
/// </summary>
internal sealed class GraphValues
{
    private const int MaxDepth = 16;

    private readonly Dictionary<CaptureId, IOperation?> _captures = new();
    private readonly Dictionary<ILocalSymbol, IOperation?> _singleAssigned = new(SymbolEqualityComparer.Default);
    private readonly Dictionary<CaptureId, ILocalSymbol?> _captureLocals = new();

    /// <summary>Scans every operation of <paramref name="graph"/>.</summary>
    public GraphValues(ControlFlowGraph graph)
    {
        var multiply = new HashSet<ILocalSymbol>(SymbolEqualityComparer.Default);
        foreach (var root in RootsOf(graph))
            Scan(root, multiply);
        foreach (var local in multiply)
            _singleAssigned[local] = null;
    }

    /// <summary>The operation trees of <paramref name="graph"/>, block by block (operations, then the branch value).</summary>
    public static IEnumerable<IOperation> RootsOf(ControlFlowGraph graph)
    {
        foreach (var block in graph.Blocks)
        {
            foreach (var op in block.Operations)
                yield return op;
            if (block.BranchValue is not null)
                yield return block.BranchValue;
        }
    }

    /// <summary>
    /// Whether <paramref name="id"/> is captured in the graph; <paramref name="value"/> is what it captures, null if it
    /// captures different values on different paths.
    /// </summary>
    public bool TryGetCaptured(CaptureId id, out IOperation? value) => _captures.TryGetValue(id, out value);

    /// <summary>
    /// Whether <paramref name="local"/> is assigned in the graph; <paramref name="value"/> is the value if it is assigned
    /// exactly once (and never by reference, increment or deconstruction), null otherwise.
    /// </summary>
    public bool TryGetSingleAssigned(ILocalSymbol local, out IOperation? value) => _singleAssigned.TryGetValue(local, out value);

    /// <summary>The value behind <paramref name="operation"/>: conversions stripped and flow captures followed.</summary>
    public IOperation ResolveCaptures(IOperation operation) => Follow(operation, throughLocals: false);

    /// <summary>
    /// The value behind <paramref name="operation"/>: conversions stripped, flow captures and locals assigned once
    /// followed to what was assigned.
    /// </summary>
    public IOperation Resolve(IOperation operation) => Follow(operation, throughLocals: true);

    /// <summary><paramref name="operation"/> and its descendants, with flow-capture references followed to the value captured.</summary>
    public IEnumerable<IOperation> Expand(IOperation operation)
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
    public ILocalSymbol? LocalHolding(IOperation value)
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

    private IOperation Follow(IOperation operation, bool throughLocals)
    {
        for (int depth = 0; depth < MaxDepth; depth++)
        {
            switch (operation)
            {
                case IConversionOperation c:
                    operation = c.Operand;
                    continue;
                case IParenthesizedOperation p when throughLocals:
                    operation = p.Operand;
                    continue;
                case IFlowCaptureReferenceOperation r when _captures.TryGetValue(r.Id, out var captured) && captured is not null:
                    operation = captured;
                    continue;
                case ILocalReferenceOperation l when throughLocals && _singleAssigned.TryGetValue(l.Local, out var assigned) && assigned is not null:
                    operation = assigned;
                    continue;
                default:
                    return operation;
            }
        }
        return operation;
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
                    if (Operands.Strip(assign.Value) is IFlowCaptureReferenceOperation read)
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
}
