using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;

namespace HmmEmu.Analyzers.CodeFixes;

/// <summary>
/// The shape the HMM002, HMM008 and HMM011 fixes share: each diagnostic has an anchor node; the fix is offered only
/// when a plan can be made from it (<see cref="CanFix"/>), and applying it re-plans on the current document (so Fix
/// All, which applies the fixes one after another through <see cref="SequentialFixAll"/>, sees earlier edits).
/// </summary>
public abstract class PlannedCodeFix : CodeFixProvider
{
    /// <summary>The code action's title (also its equivalence key).</summary>
    private protected abstract string Title { get; }

    /// <summary>The node the diagnostic is about, or null.</summary>
    private protected abstract SyntaxNode? Anchor(SyntaxNode root, Diagnostic diagnostic);

    /// <summary>Whether a fix can be planned at <paramref name="anchor"/>.</summary>
    private protected abstract bool CanFix(SyntaxNode anchor, SemanticModel model, CancellationToken cancellation);

    /// <summary>The fixed document, or null if no fix can be planned at <paramref name="anchor"/> any more.</summary>
    private protected abstract Task<Document?> ApplyAsync(Document document, SyntaxNode anchor, CancellationToken cancellation);

    /// <inheritdoc />
    public sealed override FixAllProvider GetFixAllProvider() => SequentialFixAll.Create(Anchor, ApplyAsync);

    /// <inheritdoc />
    public sealed override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null)
            return;
        foreach (var diagnostic in context.Diagnostics)
        {
            var anchor = Anchor(root, diagnostic);
            if (anchor is null || !CanFix(anchor, model, context.CancellationToken))
                continue;
            context.RegisterCodeFix(
                CodeAction.Create(Title, async ct => await ApplyAsync(context.Document, anchor, ct).ConfigureAwait(false) ?? context.Document, equivalenceKey: Title),
                diagnostic);
        }
    }
}
