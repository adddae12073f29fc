using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM001: an invalidate callback calls something that may sleep on a path where the range may be non-blockable
/// (the OOM reaper's invalidation). Blocking is fine once the callback has tested <c>range.Blockable</c> (or an event
/// other than Unmap) on every path to the call; under a successful <c>TryLock</c> only non-blocking work may follow.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM001BlockingInNonBlockableInvalidateAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM001";

    internal static readonly DiagnosticDescriptor Descriptor = new(
        Id,
        title: "Blocking call in an invalidate callback that may run non-blockable",
        messageFormat: "'{0}' may sleep, but this invalidate callback reaches it when the range may be non-blockable (OOM reaper): return false when !range.Blockable, or use TryLock",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "When range.Blockable is false (the OOM reaper), an invalidate callback must not sleep: it either does only non-sleeping work (TryLock) or returns false. The kernel fixed every mmu-notifier user for this in 93065ac753e4 (\"mm, oom: distinguish blockable mode for mmu notifiers\"). See docs/rules/HMM001.md.");

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
            if (!known.HasCallbacks)
                return;
            start.RegisterOperationBlockAction(block =>
            {
                if (block.OwningSymbol is not IMethodSymbol method || !known.IsInvalidateCallback(method))
                    return;
                var cfg = MethodGraphs.Body(block);
                if (cfg is not null)
                    LockFlowAnalysis.Analyze(cfg, known, new Observer(block), block.CancellationToken);
            });
        });
    }

    private sealed class Observer : FlowObserver
    {
        private readonly OperationBlockAnalysisContext _context;

        public Observer(OperationBlockAnalysisContext context) => _context = context;

        public override void OnCall(in FlowCall call, FlowState before)
        {
            if (call.Blocking != BlockingKind.None && before.Blockable != Tri.True)
                _context.ReportDiagnostic(Diagnostic.Create(Descriptor, Describe.Where(call.Operation), Describe.Callee(call)));
        }
    }
}
