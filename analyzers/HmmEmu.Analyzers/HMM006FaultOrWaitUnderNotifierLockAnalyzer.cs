using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM006: a call that may run or wait for invalidate callbacks (<c>Hmm.RangeFault</c>, <c>ReadBegin</c>, notifier
/// <c>Remove</c>, anything <c>[MayInvalidate]</c>), or, outside an invalidate callback, a blocking wait
/// (<c>[BlockingWait]</c>), made while holding a lock that an invalidate callback takes. The invalidation waits for the
/// lock; the holder waits for the invalidation: a deadlock, or a callback stalled behind an unrelated wait.
/// </summary>
/// <remarks>
/// The locks taken inside invalidate callbacks are collected over the whole compilation and the calls are matched
/// against them at compilation end (as vs-threading's VSTHRD010 does), so in the IDE these show with full-solution
/// analysis. A lock marked <c>[NotifierUpdateLock]</c> is known up front and reported as the code is typed.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM006FaultOrWaitUnderNotifierLockAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM006";

    private const string Title = "Fault, ReadBegin, notifier Remove or a wait while holding a lock an invalidate callback takes";

    private const string Description =
        "mmu_interval_read_begin and mmu_interval_notifier_remove acquire the lockdep map __mmu_notifier_invalidate_range_start_map because \"the possible sleep on progress in the invalidation requires the caller not hold any locks held by invalidation callbacks\" (mm/mmu_notifier.c). " +
        "hmm_range_fault faults pages, which can start invalidations. Release the lock before the call and re-validate with ReadRetry after taking it again. See docs/rules/HMM006.md.";

    private const string MessageFormat = "'{0}' {1} while '{2}' is held, and the invalidate callback {3} takes '{2}': release it before the call";

    internal static readonly DiagnosticDescriptor Descriptor = new(
        Id, Title, MessageFormat, Describe.Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description: Description);

    internal static readonly DiagnosticDescriptor CompilationEndDescriptor = new(
        Id, Title, MessageFormat, Describe.Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description: Description,
        customTags: WellKnownDiagnosticTags.CompilationEnd);

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Descriptor, CompilationEndDescriptor);

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
            var facts = new CallbackLocks();
            start.RegisterOperationBlockAction(block => AnalyzeMethod(block, known, facts));
            start.RegisterCompilationEndAction(end => facts.ReportAtEnd(end, CompilationEndDescriptor));
        });
    }

    private static void AnalyzeMethod(OperationBlockAnalysisContext block, KnownSymbols known, CallbackLocks facts)
    {
        if (block.OwningSymbol is not IMethodSymbol method)
            return;
        bool isCallback = known.IsInvalidateCallback(method);
        var (acquires, waits, _) = MethodGraphs.Survey(block, known);
        if (!acquires || !(waits || isCallback))
            return;
        var body = MethodGraphs.Body(block);
        if (body is null)
            return;
        string name = $"{method.ContainingType?.Name}.{method.Name}";
        LockFlowAnalysis.Analyze(body, known, new Observer(block, known, facts, isCallback, name), block.CancellationToken);
        if (!waits)
            return;
        foreach (var nested in MethodGraphs.Nested(body))
            LockFlowAnalysis.Analyze(nested, known, new Observer(block, known, facts, isCallback: false, name), block.CancellationToken);
    }

    private sealed class Observer : FlowObserver
    {
        private readonly OperationBlockAnalysisContext _context;
        private readonly KnownSymbols _known;
        private readonly CallbackLocks _facts;
        private readonly bool _isCallback;
        private readonly string _method;

        public Observer(OperationBlockAnalysisContext context, KnownSymbols known, CallbackLocks facts, bool isCallback, string method)
        {
            _context = context;
            _known = known;
            _facts = facts;
            _isCallback = isCallback;
            _method = method;
        }

        public override void OnAcquire(ISymbol key, IOperation site, FlowState before)
        {
            if (_isCallback)
                _facts.TakenInCallback(key, _method);
        }

        public override void OnCall(in FlowCall call, FlowState before)
        {
            string? what = call.Blocking switch
            {
                BlockingKind.MayInvalidate => "may run or wait for invalidate callbacks",
                BlockingKind.BlockingWait when !_isCallback => "waits for another thread or the device",
                _ => null,
            };
            if (what is null)
                return;
            foreach (var held in before.Held)
            {
                if (held.Key is not (IFieldSymbol or IPropertySymbol))
                    continue;
                var location = Describe.Where(call.Operation);
                string callee = Describe.Callee(call);
                if (_known.IsUpdateLock(held.Key))
                    _context.ReportDiagnostic(Diagnostic.Create(Descriptor, location, callee, what, held.Key.Name, "(it is the [NotifierUpdateLock])"));
                else
                    _facts.CallWhileHolding(held.Key, location, callee, what);
            }
        }
    }
}
