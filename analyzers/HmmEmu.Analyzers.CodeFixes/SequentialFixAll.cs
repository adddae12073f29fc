using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;

namespace HmmEmu.Analyzers.CodeFixes;

/// <summary>
/// A fix-all that applies a fix to each diagnostic of a document in turn, each on the document the previous ones left,
/// so that fixes touching one method (two loops, two locks, a shared constant) see each other's edits instead of
/// being merged as independent text changes. Each diagnostic's anchor node is marked first and found again by its mark.
/// </summary>
internal static class SequentialFixAll
{
    /// <summary>
    /// A provider that finds each diagnostic's anchor with <paramref name="anchorOf"/> and fixes it with
    /// <paramref name="fixOne"/> (which returns null when it no longer applies: an earlier fix already covered it).
    /// </summary>
    public static FixAllProvider Create(
        Func<SyntaxNode, Diagnostic, SyntaxNode?> anchorOf,
        Func<Document, SyntaxNode, CancellationToken, Task<Document?>> fixOne) =>
        FixAllProvider.Create(async (context, document, diagnostics) =>
        {
            var root = await document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
            if (root is null)
                return document;
            var marks = new Dictionary<SyntaxNode, SyntaxAnnotation>();
            foreach (var diagnostic in diagnostics.OrderBy(d => d.Location.SourceSpan.Start))
            {
                var anchor = anchorOf(root, diagnostic);
                if (anchor is not null && !marks.ContainsKey(anchor))
                    marks[anchor] = new SyntaxAnnotation("HmmEmuFixAll");
            }
            var current = document.WithSyntaxRoot(root.ReplaceNodes(marks.Keys, (original, rewritten) => rewritten.WithAdditionalAnnotations(marks[original])));
            foreach (var mark in marks.Values)
            {
                var currentRoot = await current.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
                SyntaxNode? anchor = null;
                foreach (var node in currentRoot!.GetAnnotatedNodes(mark))
                    anchor = node;
                if (anchor is null)
                    continue;
                var next = await fixOne(current, anchor, context.CancellationToken).ConfigureAwait(false);
                if (next is not null)
                    current = next;
            }
            return current;
        });
}
