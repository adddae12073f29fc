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
/// Fixes HMM001 by making the callback bail out of non-blockable invalidations before anything else:
/// <c>if (!range.Blockable) return false;</c> as its first statement. The OOM reaper then retries later; nothing in the
/// callback sleeps in its context.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(HMM001InsertNonBlockableGuardCodeFix)), Shared]
public sealed class HMM001InsertNonBlockableGuardCodeFix : CodeFixProvider
{
    private const string Title = "Return false when the range is not blockable";

    /// <inheritdoc />
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(HMM001BlockingInNonBlockableInvalidateAnalyzer.Id);

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
            var method = root.FindNode(diagnostic.Location.SourceSpan).FirstAncestorOrSelf<MethodDeclarationSyntax>();
            if (method?.Body is null || model.GetDeclaredSymbol(method, context.CancellationToken) is not IMethodSymbol symbol)
                continue;
            if (symbol.ReturnType.SpecialType != SpecialType.System_Boolean)
                continue;
            var range = symbol.Parameters.FirstOrDefault(p => p.Type.Name == "MmuNotifierRange");
            if (range is null)
                continue;
            context.RegisterCodeFix(
                CodeAction.Create(Title, ct => InsertGuardAsync(context.Document, method, range.Name, ct), equivalenceKey: Title),
                diagnostic);
        }
    }

    private static async Task<Document> InsertGuardAsync(Document document, MethodDeclarationSyntax method, string range, CancellationToken cancellation)
    {
        var root = await document.GetSyntaxRootAsync(cancellation).ConfigureAwait(false);
        var body = method.Body!;
        var guard = SyntaxFactory.ParseStatement($"if (!{range}.Blockable)\n    return false;\n")
            .WithAdditionalAnnotations(Formatter.Annotation);
        var newBody = body.WithStatements(body.Statements.Insert(0, guard));
        return document.WithSyntaxRoot(root!.ReplaceNode(body, newBody));
    }
}
