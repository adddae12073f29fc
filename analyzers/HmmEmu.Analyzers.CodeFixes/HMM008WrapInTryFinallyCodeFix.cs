using System.Collections.Generic;
using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Formatting;

namespace HmmEmu.Analyzers.CodeFixes;

/// <summary>
/// Fixes HMM008 by releasing the lock in a <c>finally</c>: the statements after the acquisition (<c>m.Lock();</c>, or
/// <c>if (!m.TryLock()) return ...;</c>, or the body of <c>if (m.TryLock())</c>) up to the first release of that lock
/// in the same block go into <c>try { ... } finally { m.Unlock(); }</c>, with the release that matches the acquisition
/// (<c>Unlock</c>, <c>UnlockIrqRestore</c>, <c>UpRead</c>/<c>UpWrite</c>, <c>Monitor.Exit</c>, <c>Exit*Lock</c>).
/// </summary>
/// <remarks>
/// That release statement is dropped (the <c>finally</c> runs at the same point), and so is a release written just
/// before a <c>return</c> whose value is a constant, local, parameter or field (or before a <c>break</c>/<c>continue</c>
/// that leaves the new <c>try</c>): the <c>finally</c> then runs right after it. The fix is not offered when another
/// release or a re-acquisition of the lock sits inside the wrapped statements (drop-and-retake code), when the lock is
/// released outside them on a path that falls through, when a local declared inside is used after the release, or in
/// a method whose contract is to return holding the lock (<c>[AcquiresLock]</c>, <c>[AcquiresOnSuccess]</c>).
/// </remarks>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(HMM008WrapInTryFinallyCodeFix)), Shared]
public sealed class HMM008WrapInTryFinallyCodeFix : PlannedCodeFix
{
    /// <inheritdoc />
    private protected override string Title => "Release the lock in a finally";

    /// <inheritdoc />
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(HMM008LockNotReleasedAnalyzer.Id);

    /// <inheritdoc />
    private protected override bool CanFix(SyntaxNode anchor, SemanticModel model, CancellationToken cancellation) =>
        Plan(anchor, model, KnownSymbols.Create(model.Compilation), cancellation) is not null;

    /// <inheritdoc />
    private protected override SyntaxNode? Anchor(SyntaxNode root, Diagnostic diagnostic) =>
        root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true) as InvocationExpressionSyntax;

    /// <inheritdoc />
    private protected override async Task<Document?> ApplyAsync(Document document, SyntaxNode anchor, CancellationToken cancellation)
    {
        var root = await document.GetSyntaxRootAsync(cancellation).ConfigureAwait(false);
        var model = await document.GetSemanticModelAsync(cancellation).ConfigureAwait(false);
        if (root is null || model is null)
            return null;
        var plan = Plan(anchor, model, KnownSymbols.Create(model.Compilation), cancellation);
        return plan is null ? null : document.WithSyntaxRoot(root.ReplaceNode(plan.Value.Container, plan.Value.Replacement));
    }

    // The container to replace and its replacement, or null if the shape is not one this fix can wrap safely.
    private static (SyntaxNode Container, SyntaxNode Replacement)? Plan(SyntaxNode anchor, SemanticModel model, KnownSymbols known, CancellationToken cancellation)
    {
        if (LockSyntax.Classify(anchor as ExpressionSyntax, model, known, cancellation) is not { } acquire)
            return null;
        if (acquire.Effect is not (LockEffect.Acquire or LockEffect.AcquireOnSuccess) || LockSyntax.HasTakenFlag(acquire))
            return null;
        if (acquire.Method.ReturnType.SpecialType is not (SpecialType.System_Void or SpecialType.System_Boolean))
            return null;   // a scope: the fix for that is a using, not a finally
        if (model.GetEnclosingSymbol(anchor.SpanStart, cancellation) is IMethodSymbol owner && known.FactsOf(owner).Lock != LockEffect.None)
            return null;   // returning with the lock held is this method's contract
        var release = LockSyntax.ReleaseFor(acquire, known);
        if (release is null || Held(acquire, anchor) is not { } held)
            return null;

        var (container, start) = held;
        var statements = container is BlockSyntax block ? block.Statements.ToList() : new List<StatementSyntax> { (StatementSyntax)container };
        int end = statements.Count;   // the region is [start, end); statements[end], if any, is the release it replaces
        for (int i = start; i < statements.Count; i++)
        {
            if (LockSyntax.OfStatement(statements[i], model, known, cancellation) is { Effect: LockEffect.Release } r && r.Key.Equals(acquire.Key))
            {
                end = i;
                break;
            }
        }
        bool replacesRelease = end < statements.Count;
        bool takesReturn = replacesRelease && end + 1 < statements.Count
            && statements[end + 1] is ReturnStatementSyntax finalReturn && IsSimple(finalReturn.Expression, model, cancellation);
        var region = statements.Skip(start).Take(end - start).ToList();
        if (takesReturn)
            region.Add(statements[end + 1]);
        var tail = replacesRelease ? statements.Skip(end + (takesReturn ? 2 : 1)).ToList() : new List<StatementSyntax>();
        if (region.Count == 0)
            return null;

        // Every other use of this lock inside the region must be a release right before a jump out of it.
        var removable = new List<StatementSyntax>();
        foreach (var invocation in region.SelectMany(s => s.DescendantNodesAndSelf()).OfType<InvocationExpressionSyntax>())
        {
            if (LockSyntax.Classify(invocation, model, known, cancellation) is not { } use || !use.Key.Equals(acquire.Key))
                continue;
            if (use.Effect != LockEffect.Release || !IsReleaseBeforeExit(invocation, region, model, cancellation, out var statement))
                return null;
            removable.Add(statement!);
        }

        // Falling out of the region without a release: the lock must not be released anywhere else (after the block,
        // or at the top of the loop it is in), or the finally would release it twice.
        if (!replacesRelease && OtherReleases(anchor, region, acquire.Key, model, known, cancellation))
            return null;

        // A local declared in the region and used after it would go out of scope.
        if (tail.Count > 0 && UsesRegionLocals(region, tail, model, cancellation))
            return null;

        var newContainer = removable.Count == 0 ? container : container.RemoveNodes(removable, SyntaxRemoveOptions.KeepNoTrivia)!;
        var newStatements = newContainer is BlockSyntax newBlock ? newBlock.Statements.ToList() : new List<StatementSyntax> { (StatementSyntax)newContainer };
        var newRegion = newStatements.Skip(start).Take(end - start).ToList();
        if (takesReturn)
            newRegion.Add(newStatements[end + 1]);
        var tryStatement = SyntaxFactory.TryStatement(
                SyntaxFactory.Block(newRegion),
                default,
                SyntaxFactory.FinallyClause(SyntaxFactory.Block(release)))
            .WithTrailingTrivia(statements[end - 1 >= start ? end - 1 : end + 1].GetTrailingTrivia())
            .WithAdditionalAnnotations(Formatter.Annotation);
        var result = newStatements.Take(start).Append(tryStatement).Concat(newStatements.Skip(end + (takesReturn ? 2 : 1)).Take(tail.Count));
        SyntaxNode replacement = newContainer is BlockSyntax b2
            ? b2.WithStatements(SyntaxFactory.List(result))
            : SyntaxFactory.Block(result).WithAdditionalAnnotations(Formatter.Annotation);
        return (container, replacement);
    }

    // Where the lock is held from: the block and the index of the first statement run holding it.
    private static (SyntaxNode Container, int Start)? Held(LockCall acquire, SyntaxNode anchor)
    {
        SyntaxNode node = anchor;
        while (node.Parent is ParenthesizedExpressionSyntax or PostfixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.SuppressNullableWarningExpression })
            node = node.Parent;
        if (acquire.Effect == LockEffect.Acquire)
        {
            // m.Lock();
            if (node.Parent is ExpressionStatementSyntax { Parent: BlockSyntax block } statement)
                return (block, block.Statements.IndexOf(statement) + 1);
            return null;
        }
        bool negated = false;
        if (node.Parent is PrefixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.LogicalNotExpression } not)
        {
            negated = true;
            node = not;
            while (node.Parent is ParenthesizedExpressionSyntax)
                node = node.Parent;
        }
        if (node.Parent is not IfStatementSyntax ifStatement || ifStatement.Condition != node)
            return null;
        if (!negated)
            return (ifStatement.Statement, 0);   // if (m.TryLock()) { ... }
        // if (!m.TryLock()) return ...;
        if (ifStatement.Else is not null || !EndsInJump(ifStatement.Statement) || ifStatement.Parent is not BlockSyntax outer)
            return null;
        return (outer, outer.Statements.IndexOf(ifStatement) + 1);
    }

    private static bool EndsInJump(StatementSyntax statement) => statement switch
    {
        BlockSyntax block => block.Statements.Count > 0 && EndsInJump(block.Statements.Last()),
        ReturnStatementSyntax or ThrowStatementSyntax or BreakStatementSyntax or ContinueStatementSyntax or GotoStatementSyntax => true,
        _ => false,
    };

    // 'm.Unlock();' directly followed by a return of a simple value, or by a break/continue out of the region.
    private static bool IsReleaseBeforeExit(InvocationExpressionSyntax release, List<StatementSyntax> region, SemanticModel model, CancellationToken cancellation, out StatementSyntax? statement)
    {
        statement = null;
        if (release.Parent is not ExpressionStatementSyntax { Parent: BlockSyntax block } expressionStatement)
            return false;
        if (release.Ancestors().TakeWhile(a => !region.Contains(a)).Any(LockSyntax.IsFunction))
            return false;   // runs in a lambda or local function, not on this method's paths
        int index = block.Statements.IndexOf(expressionStatement);
        if (index + 1 >= block.Statements.Count)
            return false;
        bool leaves = block.Statements[index + 1] switch
        {
            ReturnStatementSyntax r => IsSimple(r.Expression, model, cancellation),
            BreakStatementSyntax b => !InRegion(JumpTarget(b, breaks: true), region),
            ContinueStatementSyntax c => !InRegion(JumpTarget(c, breaks: false), region),
            _ => false,
        };
        statement = expressionStatement;
        return leaves;
    }

    private static SyntaxNode? JumpTarget(StatementSyntax jump, bool breaks)
    {
        foreach (var a in jump.Ancestors())
        {
            if (LockSyntax.IsFunction(a))
                return null;
            if (a is WhileStatementSyntax or DoStatementSyntax or ForStatementSyntax or ForEachStatementSyntax or ForEachVariableStatementSyntax)
                return a;
            if (breaks && a is SwitchStatementSyntax)
                return a;
        }
        return null;
    }

    private static bool InRegion(SyntaxNode? node, List<StatementSyntax> region) =>
        node is null || region.Any(s => s.Span.Contains(node.Span));

    // A value computed the same before and after the release: a constant, local, parameter or field, cast or negated.
    private static bool IsSimple(ExpressionSyntax? expression, SemanticModel model, CancellationToken cancellation)
    {
        switch (expression)
        {
            case null:
            case LiteralExpressionSyntax:
            case DefaultExpressionSyntax:
                return true;
            case ParenthesizedExpressionSyntax p:
                return IsSimple(p.Expression, model, cancellation);
            case CastExpressionSyntax c:
                return IsSimple(c.Expression, model, cancellation);
            case PrefixUnaryExpressionSyntax u:
                return IsSimple(u.Operand, model, cancellation);
            case IdentifierNameSyntax or MemberAccessExpressionSyntax:
                return model.GetSymbolInfo(expression, cancellation).Symbol is ILocalSymbol or IParameterSymbol or IFieldSymbol
                    && (expression is not MemberAccessExpressionSyntax m || m.Expression is TypeSyntax && model.GetSymbolInfo(m.Expression, cancellation).Symbol is ITypeSymbol or INamespaceSymbol || IsSimple(m.Expression, model, cancellation));
            case ThisExpressionSyntax:
                return true;
            default:
                return false;
        }
    }

    private static bool OtherReleases(SyntaxNode anchor, List<StatementSyntax> region, LockKey key, SemanticModel model, KnownSymbols known, CancellationToken cancellation)
    {
        var body = anchor.Ancestors().FirstOrDefault(a => LockSyntax.IsFunction(a) || a is BaseMethodDeclarationSyntax or AccessorDeclarationSyntax);
        if (body is null)
            return true;
        foreach (var invocation in body.DescendantNodes().OfType<InvocationExpressionSyntax>())
        {
            if (region.Any(s => s.Span.Contains(invocation.Span)))
                continue;
            if (LockSyntax.Classify(invocation, model, known, cancellation) is { Effect: LockEffect.Release } r && r.Key.Equals(key))
                return true;
        }
        return false;
    }

    private static bool UsesRegionLocals(List<StatementSyntax> region, List<StatementSyntax> tail, SemanticModel model, CancellationToken cancellation)
    {
        var flow = model.AnalyzeDataFlow(region[0], region[region.Count - 1]);
        if (flow is null || !flow.Succeeded)
            return true;
        if (flow.VariablesDeclared.IsEmpty)
            return false;
        var declared = new HashSet<ISymbol>(flow.VariablesDeclared, SymbolEqualityComparer.Default);
        return tail.SelectMany(s => s.DescendantNodes()).OfType<IdentifierNameSyntax>()
            .Any(id => model.GetSymbolInfo(id, cancellation).Symbol is { } s && declared.Contains(s));
    }
}
