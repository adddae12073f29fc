using System;
using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;
using Microsoft.CodeAnalysis.Text;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM011: a <c>while</c>, <c>do</c> or <c>for</c> loop around <c>Hmm.RangeFault</c> (the innermost loop of the call)
/// with no bound: neither its condition nor any test in its body that leaves it (<c>return</c>, <c>throw</c>,
/// <c>break</c>) compares a counter or a clock (a relational operator) or asks a deadline (a member whose name says
/// <c>Expired</c>, <c>Deadline</c>, <c>Timeout</c> or <c>TimedOut</c>).
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM011UnboundedFaultRetryAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM011";

    internal static readonly DiagnosticDescriptor Descriptor = new(
        Id,
        title: "Unbounded fault-retry loop",
        messageFormat: "This loop retries Hmm.RangeFault with no bound: under a steady stream of invalidations it never ends; leave it when a deadline passes or an attempt budget runs out (HMM_RANGE_DEFAULT_TIMEOUT)",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "RangeFault returns EBUSY, and ReadRetry answers true, whenever an invalidation overlapped the attempt. A retry loop without a deadline or budget spins forever while another thread keeps invalidating the range (or livelocks against its own migration). Every kernel driver bounds the loop with HMM_RANGE_DEFAULT_TIMEOUT. See docs/rules/HMM011.md.");

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Descriptor);

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(start =>
        {
            var known = KnownSymbols.Create(start.Compilation);
            if (known.RangeFault is null)
                return;
            start.RegisterOperationAction(
                op =>
                {
                    var loop = (ILoopOperation)op.Operation;
                    if (loop.LoopKind == LoopKind.ForEach || !RetriesFault(loop, known) || IsBounded(loop))
                        return;
                    op.ReportDiagnostic(Diagnostic.Create(Descriptor, Header(loop.Syntax)));
                },
                OperationKind.Loop);
        });
    }

    // Whether a RangeFault call has this loop as its innermost loop (lambdas and local functions run elsewhere).
    private static bool RetriesFault(ILoopOperation loop, KnownSymbols known)
    {
        foreach (var op in loop.Body.DescendantsAndSelf())
        {
            if (op is not IInvocationOperation invocation || !KnownSymbols.IsMethod(invocation.TargetMethod, known.RangeFault))
                continue;
            for (var parent = invocation.Parent; parent is not null; parent = parent.Parent)
            {
                if (parent is IAnonymousFunctionOperation or ILocalFunctionOperation)
                    break;
                if (parent is ILoopOperation enclosing)
                {
                    if (ReferenceEquals(enclosing, loop))
                        return true;
                    break;
                }
            }
        }
        return false;
    }

    private static bool IsBounded(ILoopOperation loop)
    {
        IOperation? condition = loop switch
        {
            IWhileLoopOperation w => w.Condition,
            IForLoopOperation f => f.Condition,
            _ => null,
        };
        if (condition is not null && IsBudgetTest(condition))
            return true;
        foreach (var op in loop.Body.DescendantsAndSelf())
        {
            if (op is IConditionalOperation { IsRef: false } test && IsBudgetTest(test.Condition)
                && (Leaves(test.WhenTrue, loop) || test.WhenFalse is not null && Leaves(test.WhenFalse, loop)))
                return true;
        }
        return false;
    }

    private static bool IsBudgetTest(IOperation condition)
    {
        foreach (var op in condition.DescendantsAndSelf())
        {
            switch (op)
            {
                case IBinaryOperation { OperatorKind: BinaryOperatorKind.LessThan or BinaryOperatorKind.LessThanOrEqual or BinaryOperatorKind.GreaterThan or BinaryOperatorKind.GreaterThanOrEqual }:
                    return true;
                case IPropertyReferenceOperation p when NamesDeadline(p.Property.Name):
                    return true;
                case IFieldReferenceOperation f when NamesDeadline(f.Field.Name):
                    return true;
                case IInvocationOperation i when NamesDeadline(i.TargetMethod.Name):
                    return true;
            }
        }
        return false;
    }

    private static bool NamesDeadline(string name) =>
        name.IndexOf("Expired", StringComparison.OrdinalIgnoreCase) >= 0
        || name.IndexOf("Deadline", StringComparison.OrdinalIgnoreCase) >= 0
        || name.IndexOf("Timeout", StringComparison.OrdinalIgnoreCase) >= 0
        || name.IndexOf("TimedOut", StringComparison.OrdinalIgnoreCase) >= 0;

    // Whether the branch leaves the loop: returns, throws, or breaks out of it.
    private static bool Leaves(IOperation branch, ILoopOperation loop)
    {
        foreach (var op in branch.DescendantsAndSelf())
        {
            switch (op)
            {
                case IReturnOperation:
                case IThrowOperation:
                    return true;
                case IBranchOperation { BranchKind: BranchKind.Break } b when SymbolEqualityComparer.Default.Equals(b.Target, loop.ExitLabel):
                    return true;
            }
        }
        return false;
    }

    // The loop's header: 'while (...)', 'for (...)', or 'do' ... 'while (...)'.
    private static Location Header(SyntaxNode syntax) => syntax switch
    {
        WhileStatementSyntax w => Location.Create(w.SyntaxTree, TextSpan.FromBounds(w.WhileKeyword.SpanStart, w.CloseParenToken.Span.End)),
        ForStatementSyntax f => Location.Create(f.SyntaxTree, TextSpan.FromBounds(f.ForKeyword.SpanStart, f.CloseParenToken.Span.End)),
        DoStatementSyntax d => Location.Create(d.SyntaxTree, TextSpan.FromBounds(d.WhileKeyword.SpanStart, d.CloseParenToken.Span.End)),
        _ => syntax.GetLocation(),
    };
}
