using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers.Flow;

/// <summary>Finds the control-flow graphs of a method body and of the lambdas and local functions inside it.</summary>
internal static class MethodGraphs
{
    /// <summary>The graph of the method body in <paramref name="context"/>, or null (no body, or not a method).</summary>
    public static ControlFlowGraph? Body(in OperationBlockAnalysisContext context)
    {
        // The body block of a method is reported as its own operation block (its parent, the IMethodBodyOperation, is
        // not); the graph is built from the root either way.
        foreach (var block in context.OperationBlocks)
        {
            if (block.Kind is OperationKind.Block or OperationKind.MethodBody or OperationKind.ConstructorBody)
                return context.GetControlFlowGraph(block);
        }
        return null;
    }

    /// <summary>The graphs of the lambdas and local functions of <paramref name="root"/>, recursively (not root itself).</summary>
    public static IEnumerable<ControlFlowGraph> Nested(ControlFlowGraph root)
    {
        var pending = new Stack<ControlFlowGraph>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var graph = pending.Pop();
            foreach (var local in graph.LocalFunctions)
            {
                var nested = graph.GetLocalFunctionControlFlowGraph(local);
                yield return nested;
                pending.Push(nested);
            }
            foreach (var block in graph.Blocks)
            {
                foreach (var op in block.Operations)
                {
                    foreach (var lambda in Lambdas(op))
                    {
                        var nested = graph.GetAnonymousFunctionControlFlowGraph(lambda);
                        yield return nested;
                        pending.Push(nested);
                    }
                }
                if (block.BranchValue is not null)
                {
                    foreach (var lambda in Lambdas(block.BranchValue))
                    {
                        var nested = graph.GetAnonymousFunctionControlFlowGraph(lambda);
                        yield return nested;
                        pending.Push(nested);
                    }
                }
            }
        }
    }

    /// <summary>
    /// A cheap look over the operation blocks of <paramref name="context"/>, before any graph is built: whether the method
    /// takes a lock (a call that acquires, or a <c>lock</c> statement), whether it calls something that waits for or
    /// runs invalidations, and whether it calls an allocator that may reclaim.
    /// </summary>
    public static (bool Acquires, bool Waits, bool Reclaims) Survey(in OperationBlockAnalysisContext context, KnownSymbols known)
    {
        bool acquires = false, waits = false, reclaims = false;
        foreach (var block in context.OperationBlocks)
        {
            foreach (var op in block.DescendantsAndSelf())
            {
                if (op is ILockOperation)
                {
                    acquires = true;
                }
                else if (op is IInvocationOperation invocation)
                {
                    var facts = known.FactsOf(invocation.TargetMethod);
                    acquires |= facts.Lock is LockEffect.Acquire or LockEffect.AcquireOnSuccess;
                    waits |= facts.Blocking is BlockingKind.MayInvalidate or BlockingKind.BlockingWait;
                    reclaims |= facts.Reclaims;
                }
                else if (op is IPropertyReferenceOperation property)
                {
                    waits |= known.IsBlockingProperty(property.Property);
                }
            }
        }
        return (acquires, waits, reclaims);
    }

    private static IEnumerable<IFlowAnonymousFunctionOperation> Lambdas(IOperation root)
    {
        foreach (var op in root.DescendantsAndSelf())
        {
            if (op is IFlowAnonymousFunctionOperation lambda)
                yield return lambda;
        }
    }
}
