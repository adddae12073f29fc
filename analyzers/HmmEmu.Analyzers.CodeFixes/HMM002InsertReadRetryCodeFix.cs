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
/// Fixes the common shape of HMM002: a commit inside the fault-retry loop, under a lock taken in that loop, with no
/// <c>ReadRetry</c> before it. Inserts <c>if (notifier.ReadRetry(seq)) continue;</c> under the lock, before the
/// statement (at the lock's own level) that leads to the commit; when the lock is released by hand rather than by a
/// <c>finally</c>, <c>using</c> scope or <c>lock</c> statement, the inserted branch releases it before retrying.
/// </summary>
/// <remarks>
/// <c>notifier</c> and <c>seq</c> come from the last <c>x = notifier.ReadBegin()</c> (or <c>ulong seq = ...</c>) in
/// the loop before the commit. Not offered when any piece is missing: no lock taken in the loop is held at the commit
/// (or, if the type declares a <c>[NotifierUpdateLock]</c>, not that one), the innermost loop around it is not a
/// <c>while</c> or <c>for</c>, or no <c>ReadBegin</c> result is in scope.
/// </remarks>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(HMM002InsertReadRetryCodeFix)), Shared]
public sealed class HMM002InsertReadRetryCodeFix : PlannedCodeFix
{
    /// <inheritdoc />
    private protected override string Title => "Check ReadRetry under the lock before committing, and retry";

    /// <inheritdoc />
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(HMM002CommitWithoutRetryCheckAnalyzer.Id);

    /// <inheritdoc />
    private protected override bool CanFix(SyntaxNode anchor, SemanticModel model, CancellationToken cancellation) =>
        Plan(anchor, model, KnownSymbols.Create(model.Compilation), cancellation) is not null;

    /// <inheritdoc />
    private protected override SyntaxNode? Anchor(SyntaxNode root, Diagnostic diagnostic) =>
        root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true);

    /// <inheritdoc />
    private protected override async Task<Document?> ApplyAsync(Document document, SyntaxNode commit, CancellationToken cancellation)
    {
        var root = await document.GetSyntaxRootAsync(cancellation).ConfigureAwait(false);
        var model = await document.GetSemanticModelAsync(cancellation).ConfigureAwait(false);
        if (root is null || model is null || Plan(commit, model, KnownSymbols.Create(model.Compilation), cancellation) is not { } plan)
            return null;
        SyntaxNode container, replacement;
        if (plan.Block is { } block)
        {
            container = block;
            replacement = block.WithStatements(block.Statements.Insert(block.Statements.IndexOf(plan.Before), plan.Check));
        }
        else
        {
            container = plan.Before;
            replacement = SyntaxFactory.Block(plan.Check, plan.Before.WithoutLeadingTrivia()).WithAdditionalAnnotations(Formatter.Annotation);
        }
        return document.WithSyntaxRoot(root.ReplaceNode(container, replacement));
    }

    // Insert Check before Before in Block; with no Block, Before is the embedded body of the lock's scope: wrap it.
    private readonly struct Insertion
    {
        public Insertion(BlockSyntax? block, StatementSyntax before, StatementSyntax check)
        {
            Block = block;
            Before = before;
            Check = check;
        }

        public BlockSyntax? Block { get; }
        public StatementSyntax Before { get; }
        public StatementSyntax Check { get; }
    }

    // Where the lock is held over the commit: the lock, where to insert, and whether the retry must release it.
    private readonly struct Region
    {
        public Region(LockCall? acquire, SyntaxNode site, BlockSyntax? block, StatementSyntax before, bool releaseByHand)
        {
            Acquire = acquire;
            Site = site;
            Block = block;
            Before = before;
            ReleaseByHand = releaseByHand;
        }

        public LockCall? Acquire { get; }
        public SyntaxNode Site { get; }
        public BlockSyntax? Block { get; }
        public StatementSyntax Before { get; }
        public bool ReleaseByHand { get; }
    }

    private static Insertion? Plan(SyntaxNode commit, SemanticModel model, KnownSymbols known, CancellationToken cancellation)
    {
        if (known.ReadRetry is null || known.ReadBegin is null)
            return null;
        if (model.GetEnclosingSymbol(commit.SpanStart, cancellation) is not IMethodSymbol function || function.ContainingType is null)
            return null;
        var updateLocks = known.UpdateLocksOf(function.ContainingType);
        if (HeldRegion(commit, model, known, updateLocks, cancellation) is not { } region)
            return null;

        // The retry loop: the innermost loop around the insertion point, in the same function.
        SyntaxNode? loop = null;
        foreach (var a in region.Before.Ancestors())
        {
            if (LockSyntax.IsFunction(a) || a is BaseMethodDeclarationSyntax or AccessorDeclarationSyntax)
                break;
            if (a is WhileStatementSyntax or ForStatementSyntax or DoStatementSyntax or ForEachStatementSyntax or ForEachVariableStatementSyntax)
            {
                loop = a;
                break;
            }
        }
        if (loop is not (WhileStatementSyntax or ForStatementSyntax))
            return null;
        if (!region.Site.Ancestors().Contains(loop))
            return null;   // a lock held across the loop would be held while faulting again

        // The sequence: the last ReadBegin in the loop before the insertion point, stored in a local or a field/property.
        InvocationExpressionSyntax? readBegin = null;
        foreach (var invocation in loop.DescendantNodes().OfType<InvocationExpressionSyntax>())
        {
            if (invocation.SpanStart >= region.Before.SpanStart || invocation.Ancestors().TakeWhile(a => a != loop).Any(LockSyntax.IsFunction))
                continue;
            if (model.GetSymbolInfo(invocation, cancellation).Symbol is IMethodSymbol m && KnownSymbols.IsMethod(m, known.ReadBegin))
                readBegin = invocation;
        }
        if (readBegin?.Expression is not MemberAccessExpressionSyntax { Expression: var notifier })
            return null;
        string? seq = SeqStoredFrom(readBegin, region.Before, model, cancellation);
        if (seq is null)
            return null;

        // Already checked at this level (an earlier fix in the same fix-all): nothing to do.
        if (region.Block is { } block && block.Statements.TakeWhile(s => s != region.Before).Any(s => s is IfStatementSyntax i && CallsReadRetry(i.Condition, model, known, cancellation)))
            return null;

        string retry;
        if (region.ReleaseByHand)
        {
            var release = region.Acquire is { } acquire ? LockSyntax.ReleaseFor(acquire, known) : null;
            if (release is null)
                return null;
            retry = $"{{\n    {release.NormalizeWhitespace().ToFullString()}\n    continue;\n}}\n";
        }
        else
        {
            retry = "    continue;\n";
        }
        var check = SyntaxFactory.ParseStatement($"if ({notifier.WithoutTrivia().ToFullString()}.ReadRetry({seq}))\n{retry}")
            .WithAdditionalAnnotations(Formatter.Annotation);
        return new Insertion(region.Block, region.Before, check);
    }

    // The innermost lock region around the commit whose lock is taken in this function (and is the update lock, if the
    // type names one), found by walking out from the commit.
    private static Region? HeldRegion(SyntaxNode commit, SemanticModel model, KnownSymbols known, ImmutableArray<ISymbol> updateLocks, CancellationToken cancellation)
    {
        bool IsNotifierLock(LockCall call) =>
            updateLocks.IsEmpty || call.Key.Member is null && updateLocks.Any(l => SymbolEqualityComparer.Default.Equals(l, call.Key.Symbol));

        LockCall? Acquisition(ExpressionSyntax? expression) =>
            LockSyntax.Classify(expression, model, known, cancellation) is { Effect: LockEffect.Acquire or LockEffect.AcquireOnSuccess } call && IsNotifierLock(call) ? call : null;

        // Locks released by a finally we are inside of, and the insertion point inside that try for each.
        var finallyReleased = new Dictionary<LockKey, (BlockSyntax Block, StatementSyntax Before)>();
        SyntaxNode child = commit;
        SyntaxNode? previous = null;
        foreach (var parent in commit.Ancestors())
        {
            if (LockSyntax.IsFunction(parent) || parent is BaseMethodDeclarationSyntax or AccessorDeclarationSyntax)
                return null;
            switch (parent)
            {
                case TryStatementSyntax { Finally: { } fin } t when child == t.Block && child is StatementSyntax:
                    foreach (var release in fin.Block.DescendantNodes().OfType<InvocationExpressionSyntax>())
                    {
                        if (LockSyntax.Classify(release, model, known, cancellation) is { Effect: LockEffect.Release } r && previous is StatementSyntax inTry)
                            finallyReleased[r.Key] = (t.Block, inTry);
                    }
                    break;
                case BlockSyntax block when child is StatementSyntax statement:
                    var released = new HashSet<LockKey>();
                    for (int i = block.Statements.IndexOf(statement) - 1; i >= 0; i--)
                    {
                        var s = block.Statements[i];
                        LockCall? taken = s switch
                        {
                            ExpressionStatementSyntax e => Acquisition(e.Expression),
                            IfStatementSyntax { Else: null, Condition: PrefixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.LogicalNotExpression } not } => Acquisition(not.Operand),
                            LocalDeclarationStatementSyntax { UsingKeyword.RawKind: (int)SyntaxKind.UsingKeyword } d when d.Declaration.Variables.Count == 1 => Acquisition(d.Declaration.Variables[0].Initializer?.Value),
                            _ => null,
                        };
                        if (taken is { } call && !released.Contains(call.Key))
                        {
                            if (s is LocalDeclarationStatementSyntax)
                                return new Region(call, s, block, statement, releaseByHand: false);
                            if (finallyReleased.TryGetValue(call.Key, out var inTry))
                                return new Region(call, s, inTry.Block, inTry.Before, releaseByHand: false);
                            return new Region(call, s, block, statement, releaseByHand: true);
                        }
                        foreach (var invocation in s.DescendantNodesAndSelf().OfType<InvocationExpressionSyntax>())
                        {
                            if (LockSyntax.Classify(invocation, model, known, cancellation) is { Effect: LockEffect.Release } r)
                                released.Add(r.Key);
                        }
                    }
                    break;
                case UsingStatementSyntax u when child == u.Statement:
                    if (Acquisition(u.Expression ?? (u.Declaration?.Variables.Count == 1 ? u.Declaration.Variables[0].Initializer?.Value : null)) is { } scoped)
                        return BodyRegion(scoped, u, u.Statement, previous, releaseByHand: false);
                    break;
                case LockStatementSyntax l when child == l.Statement:
                    // The lock statement's lock is the locked object; [NotifierUpdateLock] names KMutex-like fields.
                    if (updateLocks.IsEmpty && model.GetSymbolInfo(l.Expression, cancellation).Symbol is not null)
                        return BodyRegion(null, l, l.Statement, previous, releaseByHand: false);
                    break;
                case IfStatementSyntax i when child == i.Statement && Acquisition(i.Condition) is { } tried:
                    if (finallyReleased.TryGetValue(tried.Key, out var inTryBody))
                        return new Region(tried, i, inTryBody.Block, inTryBody.Before, releaseByHand: false);
                    return BodyRegion(tried, i, i.Statement, previous, releaseByHand: true);
            }
            previous = child;
            child = parent;
        }
        return null;
    }

    private static Region? BodyRegion(LockCall? acquire, SyntaxNode site, StatementSyntax body, SyntaxNode? previous, bool releaseByHand)
    {
        if (body is BlockSyntax block)
            return previous is StatementSyntax inBlock && inBlock.Parent == block ? new Region(acquire, site, block, inBlock, releaseByHand) : null;
        return new Region(acquire, site, null, body, releaseByHand);
    }

    // 'seq' for 'ulong seq = n.ReadBegin();', 'range.NotifierSeq' for 'range.NotifierSeq = n.ReadBegin();', if in scope at 'at'.
    private static string? SeqStoredFrom(InvocationExpressionSyntax readBegin, StatementSyntax at, SemanticModel model, CancellationToken cancellation)
    {
        SyntaxNode node = readBegin;
        while (node.Parent is ParenthesizedExpressionSyntax)
            node = node.Parent;
        switch (node.Parent)
        {
            case EqualsValueClauseSyntax { Parent: VariableDeclaratorSyntax declarator }:
                var local = model.GetDeclaredSymbol(declarator, cancellation);
                return local is not null && model.LookupSymbols(at.SpanStart, name: local.Name).Any(s => SymbolEqualityComparer.Default.Equals(s, local))
                    ? declarator.Identifier.ValueText
                    : null;
            case AssignmentExpressionSyntax { RawKind: (int)SyntaxKind.SimpleAssignmentExpression } assignment when assignment.Right == node:
                var target = assignment.Left;
                var rootName = target.DescendantNodesAndSelf().OfType<IdentifierNameSyntax>().FirstOrDefault();
                var symbol = rootName is null ? null : model.GetSymbolInfo(rootName, cancellation).Symbol;
                if (symbol is ILocalSymbol && !model.LookupSymbols(at.SpanStart, name: symbol.Name).Any(s => SymbolEqualityComparer.Default.Equals(s, symbol)))
                    return null;
                return symbol is null ? null : target.WithoutTrivia().ToFullString();
            default:
                return null;
        }
    }

    private static bool CallsReadRetry(ExpressionSyntax condition, SemanticModel model, KnownSymbols known, CancellationToken cancellation) =>
        condition.DescendantNodesAndSelf().OfType<InvocationExpressionSyntax>()
            .Any(i => model.GetSymbolInfo(i, cancellation).Symbol is IMethodSymbol m && KnownSymbols.IsMethod(m, known.ReadRetry));
}
