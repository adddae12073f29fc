using System;
using System.Collections.Generic;
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
using Microsoft.CodeAnalysis.Editing;
using Microsoft.CodeAnalysis.Formatting;

namespace HmmEmu.Analyzers.CodeFixes;

/// <summary>
/// Fixes HMM011 the way the drivers bound their fault loops (HMM_RANGE_DEFAULT_TIMEOUT): <c>ulong deadline =
/// kernel.Clock.Now + RangeTimeoutNs;</c> before the loop and <c>if (kernel.Clock.Now &gt; deadline) return
/// Errno.EBUSY;</c> first in its body, so every retry (a <c>continue</c> after <c>EBUSY</c> or a failed
/// <c>ReadRetry</c>) passes the test.
/// </summary>
/// <remarks>
/// The clock is the first <c>HostKernel</c>, <c>Scheduler</c> or <c>VirtualClock</c> in scope (local, parameter, field
/// or property). The timeout is a constant or field in scope whose name says <c>Timeout</c> (a <c>RangeTimeoutNs</c>
/// the driver already has); if there is none, <c>private const ulong RangeTimeoutNs = 1_000_000_000;</c> (the
/// kernel's 1000 ms) is added to the type. Offered only in a method that returns <c>Errno</c> (or a task of it), where
/// <c>EBUSY</c> is the kernel's answer to a range that never settled, and only when a clock is in scope.
/// </remarks>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(HMM011AddDeadlineCodeFix)), Shared]
public sealed class HMM011AddDeadlineCodeFix : PlannedCodeFix
{
    /// <inheritdoc />
    private protected override string Title => "Give up with EBUSY after the range timeout";
    private const string DefaultTimeoutName = "RangeTimeoutNs";

    /// <inheritdoc />
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(HMM011UnboundedFaultRetryAnalyzer.Id);

    /// <inheritdoc />
    private protected override bool CanFix(SyntaxNode anchor, SemanticModel model, CancellationToken cancellation) =>
        Plan(anchor, model, cancellation) is not null;

    /// <inheritdoc />
    private protected override SyntaxNode? Anchor(SyntaxNode root, Diagnostic diagnostic) =>
        root.FindToken(diagnostic.Location.SourceSpan.Start).Parent?.FirstAncestorOrSelf<StatementSyntax>(
            s => s is WhileStatementSyntax or DoStatementSyntax or ForStatementSyntax);

    private sealed class Pieces
    {
        public Pieces(StatementSyntax loop, string clock, string timeout, bool addTimeout, string deadline, string busy, TypeDeclarationSyntax type)
        {
            Loop = loop;
            Clock = clock;
            Timeout = timeout;
            AddTimeout = addTimeout;
            Deadline = deadline;
            Busy = busy;
            Type = type;
        }

        public StatementSyntax Loop { get; }
        public string Clock { get; }
        public string Timeout { get; }
        public bool AddTimeout { get; }
        public string Deadline { get; }
        public string Busy { get; }
        public TypeDeclarationSyntax Type { get; }
    }

    private static Pieces? Plan(SyntaxNode node, SemanticModel model, CancellationToken cancellation)
    {
        if (node is not StatementSyntax loop || loop.Parent is not BlockSyntax || loop.FirstAncestorOrSelf<TypeDeclarationSyntax>() is not { } type)
            return null;
        if (model.GetEnclosingSymbol(loop.SpanStart, cancellation) is not IMethodSymbol function)
            return null;
        var returned = function.ReturnType as INamedTypeSymbol;
        if (function.IsAsync && returned is { IsGenericType: true, TypeArguments.Length: 1 } && returned.Name is "Task" or "ValueTask")
            returned = returned.TypeArguments[0] as INamedTypeSymbol;
        if (returned is not { Name: "Errno", TypeKind: TypeKind.Enum } || returned.ContainingNamespace?.ToDisplayString() != "HmmEmu.Kernel"
            || !returned.GetMembers("EBUSY").Any())
            return null;
        int position = loop.SpanStart;
        var inScope = model.LookupSymbols(position).Where(s => Usable(s, loop, function)).ToList();
        string? clock = Clock(inScope);
        if (clock is null)
            return null;

        string timeout = DefaultTimeoutName;
        bool addTimeout = true;
        var existing = inScope.Where(s => s.Name.IndexOf("Timeout", StringComparison.OrdinalIgnoreCase) >= 0 && IsTimeoutValue(s))
            .OrderByDescending(s => s.Name.IndexOf("Range", StringComparison.OrdinalIgnoreCase) >= 0)
            .FirstOrDefault();
        if (existing is not null)
            (timeout, addTimeout) = (existing.Name, false);
        else if (model.LookupSymbols(position, name: DefaultTimeoutName).Any())
            return null;   // the name is taken by something that is not a usable timeout

        var taken = new HashSet<string>(model.LookupSymbols(position).Select(s => s.Name));
        var body = loop.Ancestors().FirstOrDefault(a => LockSyntax.IsFunction(a) || a is BaseMethodDeclarationSyntax or AccessorDeclarationSyntax) ?? type;
        foreach (var d in body.DescendantNodes())
        {
            switch (d)
            {
                case VariableDeclaratorSyntax v: taken.Add(v.Identifier.ValueText); break;
                case SingleVariableDesignationSyntax v: taken.Add(v.Identifier.ValueText); break;
                case ForEachStatementSyntax f: taken.Add(f.Identifier.ValueText); break;
                case ParameterSyntax p: taken.Add(p.Identifier.ValueText); break;
                case LocalFunctionStatementSyntax f: taken.Add(f.Identifier.ValueText); break;
            }
        }
        string deadline = new[] { "deadline", "faultDeadline" }.Concat(Enumerable.Range(2, 8).Select(i => "deadline" + i)).FirstOrDefault(n => !taken.Contains(n))!;
        if (deadline is null)
            return null;
        string busy = returned.ToMinimalDisplayString(model, position) + ".EBUSY";
        return new Pieces(loop, clock, timeout, addTimeout, deadline, busy, type);
    }

    // Locals declared before the loop, parameters, and members reachable from this (static) context.
    private static bool Usable(ISymbol symbol, SyntaxNode loop, IMethodSymbol function) => symbol switch
    {
        ILocalSymbol local => local.DeclaringSyntaxReferences.All(r => r.Span.End <= loop.SpanStart),
        IParameterSymbol => true,
        IFieldSymbol or IPropertySymbol => symbol.IsStatic || !IsStaticContext(function),
        _ => false,
    };

    // Whether 'this' is out of reach: a static method, or a static lambda or local function on the way out to one.
    private static bool IsStaticContext(IMethodSymbol function)
    {
        for (ISymbol? s = function; s is IMethodSymbol m; s = m.ContainingSymbol)
        {
            if (m.IsStatic)
                return true;
            if (m.MethodKind is not (MethodKind.LambdaMethod or MethodKind.LocalFunction))
                return false;
        }
        return false;
    }

    // 'kernel.Clock.Now', 'scheduler.Clock.Now' or 'clock.Now' for the first such value in scope.
    private static string? Clock(List<ISymbol> inScope)
    {
        foreach (var (typeName, suffix) in new[] { ("HmmEmu.Kernel.HostKernel", ".Clock.Now"), ("HmmEmu.Simulation.Scheduler", ".Clock.Now"), ("HmmEmu.Simulation.VirtualClock", ".Now") })
        {
            var match = inScope
                .Where(s => TypeOf(s)?.ToDisplayString() == typeName)
                .OrderBy(s => s is IFieldSymbol or IPropertySymbol ? 1 : 0)
                .FirstOrDefault();
            if (match is not null)
                return match.Name + suffix;
        }
        return null;
    }

    private static ITypeSymbol? TypeOf(ISymbol symbol) => symbol switch
    {
        ILocalSymbol l => l.Type,
        IParameterSymbol p => p.Type,
        IFieldSymbol f => f.Type,
        IPropertySymbol p => p.Type,
        _ => null,
    };

    // A ulong, or a non-negative integral constant: it adds to Clock.Now (a ulong) without a cast.
    private static bool IsTimeoutValue(ISymbol symbol)
    {
        var type = TypeOf(symbol);
        if (type?.SpecialType == SpecialType.System_UInt64)
            return true;
        if (symbol is not IFieldSymbol { HasConstantValue: true } constant)
            return false;
        return constant.ConstantValue switch
        {
            int i => i >= 0,
            long l => l >= 0,
            uint or ushort or byte => true,
            _ => false,
        };
    }

    /// <inheritdoc />
    private protected override async Task<Document?> ApplyAsync(Document document, SyntaxNode anchor, CancellationToken cancellation)
    {
        var model = await document.GetSemanticModelAsync(cancellation).ConfigureAwait(false);
        if (model is null || Plan(anchor, model, cancellation) is not { } p)
            return null;
        var editor = await DocumentEditor.CreateAsync(document, cancellation).ConfigureAwait(false);
        var declaration = SyntaxFactory.ParseStatement($"ulong {p.Deadline} = {p.Clock} + {p.Timeout};\n")
            .WithAdditionalAnnotations(Formatter.Annotation);
        var check = SyntaxFactory.ParseStatement($"if ({p.Clock} > {p.Deadline})\n    return {p.Busy};\n")
            .WithAdditionalAnnotations(Formatter.Annotation);
        var body = p.Loop switch
        {
            WhileStatementSyntax w => w.Statement,
            DoStatementSyntax d => d.Statement,
            ForStatementSyntax f => f.Statement,
            _ => throw new InvalidOperationException("not a loop"),
        };
        StatementSyntax newBody = body is BlockSyntax block
            ? block.WithStatements(block.Statements.Insert(0, check))
            : SyntaxFactory.Block(check, body.WithoutLeadingTrivia()).WithAdditionalAnnotations(Formatter.Annotation);
        editor.ReplaceNode(body, newBody);
        editor.InsertBefore(p.Loop, declaration);
        if (p.AddTimeout)
        {
            var constant = SyntaxFactory.ParseMemberDeclaration(
                    $"private const ulong {DefaultTimeoutName} = 1_000_000_000;   // HMM_RANGE_DEFAULT_TIMEOUT: 1000 ms\n")!
                .WithAdditionalAnnotations(Formatter.Annotation);
            editor.ReplaceNode(p.Type, (current, _) =>
            {
                var type = (TypeDeclarationSyntax)current;
                return type.WithMembers(type.Members.Insert(0, constant));
            });
        }
        return editor.GetChangedDocument();
    }
}
