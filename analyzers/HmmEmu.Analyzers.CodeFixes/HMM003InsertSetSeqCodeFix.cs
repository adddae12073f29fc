using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Formatting;

namespace HmmEmu.Analyzers.CodeFixes;

/// <summary>
/// Fixes the "returns true without SetSeq" form of HMM003 by inserting <c>notifier.SetSeq(curSeq);</c> right after the
/// lock that is held at the offending return is taken: after <c>m.Lock();</c> (inside the <c>try</c> that follows, if
/// any), after the <c>if</c>/<c>else</c> that trylocks or locks, or first in the body of <c>using (m.Scoped())</c>.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(HMM003InsertSetSeqCodeFix)), Shared]
public sealed class HMM003InsertSetSeqCodeFix : CodeFixProvider
{
    private const string Title = "Call SetSeq(curSeq) right after taking the lock";

    /// <inheritdoc />
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(HMM003SetSeqMissingOrUnlockedAnalyzer.Id);

    /// <inheritdoc />
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc />
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null)
            return;
        foreach (var diagnostic in context.Diagnostics)
        {
            // Only the "missing" form carries the lock held at the return as its additional location.
            if (diagnostic.AdditionalLocations.Count != 1)
                continue;
            var acquire = root.FindNode(diagnostic.AdditionalLocations[0].SourceSpan, getInnermostNodeForTie: true);
            var method = acquire.FirstAncestorOrSelf<MethodDeclarationSyntax>();
            if (method is null || model.GetDeclaredSymbol(method, context.CancellationToken) is not IMethodSymbol symbol)
                continue;
            var notifier = symbol.Parameters.FirstOrDefault(p => p.Type.Name == "MmuIntervalNotifier");
            var curSeq = symbol.Parameters.LastOrDefault(p => p.Type.SpecialType == SpecialType.System_UInt64);
            if (notifier is null || curSeq is null || InsertionPoint(acquire) is null)
                continue;
            var statement = SyntaxFactory.ParseStatement($"{notifier.Name}.SetSeq({curSeq.Name});\n")
                .WithAdditionalAnnotations(Formatter.Annotation);
            context.RegisterCodeFix(
                CodeAction.Create(Title, ct => InsertAsync(context.Document, acquire, statement, ct), equivalenceKey: Title),
                diagnostic);
        }
    }

    private static async Task<Document> InsertAsync(Document document, SyntaxNode acquire, StatementSyntax statement, CancellationToken cancellation)
    {
        var root = await document.GetSyntaxRootAsync(cancellation).ConfigureAwait(false);
        var (container, replacement) = InsertionPoint(acquire)!.Value.Build(statement);
        return document.WithSyntaxRoot(root!.ReplaceNode(container, replacement));
    }

    // Where SetSeq goes for the lock taken by 'acquire'; null if the shape is not one this fix knows.
    private static Insertion? InsertionPoint(SyntaxNode acquire)
    {
        var statement = acquire.FirstAncestorOrSelf<StatementSyntax>();
        if (statement is UsingStatementSyntax usingStatement && usingStatement.Statement is { } usingBody
            && (usingStatement.Expression?.Span.Contains(acquire.Span) == true || usingStatement.Declaration?.Span.Contains(acquire.Span) == true))
        {
            return new Insertion(usingBody, atStart: true);
        }
        if (statement is null)
            return null;
        // A lock taken last in one arm of an if/else (trylock when not blockable, lock otherwise): after the whole if.
        while (true)
        {
            if (statement.Parent is BlockSyntax arm && arm.Statements.LastOrDefault() != statement)
                break;
            var parent = statement.Parent is BlockSyntax b ? b.Parent : statement.Parent;
            if (parent is ElseClauseSyntax elseClause)
                parent = elseClause.Parent;
            if (parent is not IfStatementSyntax outer)
                break;
            while (outer.Parent is ElseClauseSyntax { Parent: IfStatementSyntax chained })
                outer = chained;
            statement = outer;
        }
        if (statement.Parent is not BlockSyntax block)
            return null;
        int index = block.Statements.IndexOf(statement);
        if (index + 1 < block.Statements.Count && block.Statements[index + 1] is TryStatementSyntax tryStatement)
            return new Insertion(tryStatement.Block, atStart: true);
        return new Insertion(block, afterIndex: index);
    }

    private readonly struct Insertion
    {
        private readonly SyntaxNode _target;
        private readonly bool _atStart;
        private readonly int _afterIndex;

        public Insertion(SyntaxNode target, bool atStart)
        {
            _target = target;
            _atStart = atStart;
            _afterIndex = -1;
        }

        public Insertion(BlockSyntax block, int afterIndex)
        {
            _target = block;
            _atStart = false;
            _afterIndex = afterIndex;
        }

        public (SyntaxNode Container, SyntaxNode Replacement) Build(StatementSyntax statement)
        {
            if (_target is BlockSyntax block)
            {
                int at = _atStart ? 0 : _afterIndex + 1;
                return (block, block.WithStatements(block.Statements.Insert(at, statement)));
            }
            // An embedded statement (using (...) X): make it a block that starts with SetSeq.
            var embedded = (StatementSyntax)_target;
            return (embedded, SyntaxFactory.Block(statement, embedded.WithoutLeadingTrivia()).WithAdditionalAnnotations(Formatter.Annotation));
        }
    }
}
