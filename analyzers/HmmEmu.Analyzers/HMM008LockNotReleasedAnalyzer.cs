using System.Collections.Generic;
using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM008: a lock taken in a method is still held on some path that returns normally. Understands try/finally,
/// <c>using</c> scopes, conditional acquisition (<c>if (!m.TryLock()) return</c>) and the <c>lock</c> statement. A
/// method marked <c>[AcquiresLock]</c> may return holding its lock; one marked <c>[AcquiresOnSuccess]</c> may on paths
/// that do not return false.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM008LockNotReleasedAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM008";

    internal static readonly DiagnosticDescriptor Descriptor = new(
        Id,
        title: "Lock not released on every path",
        messageFormat: "'{0}' taken here is still held when the method returns on some path: release it on every path (in a finally, or with a using scope), or mark the method [AcquiresLock]/[AcquiresOnSuccess]",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "A lock left held on an error path deadlocks the next taker (sparse's \"context imbalance\", smatch's \"inconsistent returns\"; the nouveau mmap_sem error-path fixes). See docs/rules/HMM008.md.");

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
            start.RegisterOperationBlockAction(block =>
            {
                if (block.OwningSymbol is not IMethodSymbol method)
                    return;
                if (!MethodGraphs.Survey(block, known).Acquires)
                    return;
                var body = MethodGraphs.Body(block);
                if (body is null)
                    return;
                var contract = known.FactsOf(method).Lock;
                LockFlowAnalysis.Analyze(body, known, new Observer(block, contract, body.OriginalOperation.Syntax), block.CancellationToken);
                foreach (var nested in MethodGraphs.Nested(body))
                    LockFlowAnalysis.Analyze(nested, known, new Observer(block, LockEffect.None, nested.OriginalOperation.Syntax), block.CancellationToken);
            });
        });
    }

    private sealed class Observer : FlowObserver
    {
        private readonly OperationBlockAnalysisContext _context;
        private readonly LockEffect _contract;
        private readonly SyntaxNode _body;
        private readonly HashSet<IOperation> _reported = new();

        public Observer(OperationBlockAnalysisContext context, LockEffect contract, SyntaxNode body)
        {
            _context = context;
            _contract = contract;
            _body = body;
        }

        public override void OnReturn(IOperation? returnedValue, SyntaxNode? syntax, FlowState before, FlowState after)
        {
            if (_contract == LockEffect.Acquire)
                return;
            if (_contract == LockEffect.AcquireOnSuccess && returnedValue?.ConstantValue is not { HasValue: true, Value: false })
                return;
            // A method that returns the scope of the lock it took hands the lock to its caller (Lock() => _m.Scoped()).
            var returnedScope = returnedValue is null ? null : Analysis?.ScopeKeyOf(returnedValue);
            foreach (var held in after.Held)
            {
                if (returnedScope is not null && SymbolEqualityComparer.Default.Equals(returnedScope, held.Key))
                    continue;
                var site = held.Value.AcquiredAt;
                if (!_reported.Add(site))
                    continue;
                // The return that leaves it held (or the end of the body) is the additional location.
                var exit = syntax?.GetLocation() ?? EndOfBody();
                IEnumerable<Location> additional = exit is null ? [] : [exit];
                _context.ReportDiagnostic(Diagnostic.Create(Descriptor, Describe.Where(site), additional, Describe.Lock(held.Key)));
            }
        }

        private Location? EndOfBody() => _body switch
        {
            BlockSyntax block => block.CloseBraceToken.GetLocation(),
            ArrowExpressionClauseSyntax arrow => arrow.Expression.GetLocation(),
            BaseMethodDeclarationSyntax { Body: { } block } => block.CloseBraceToken.GetLocation(),
            BaseMethodDeclarationSyntax { ExpressionBody: { } arrow } => arrow.Expression.GetLocation(),
            LocalFunctionStatementSyntax { Body: { } block } => block.CloseBraceToken.GetLocation(),
            AnonymousFunctionExpressionSyntax { Block: { } block } => block.CloseBraceToken.GetLocation(),
            AnonymousFunctionExpressionSyntax { ExpressionBody: { } expression } => expression.GetLocation(),
            _ => null,
        };
    }
}
