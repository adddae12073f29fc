using System.Collections.Generic;
using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM003: an invalidate callback returns true on a path that did not call <c>SetSeq(curSeq)</c>, or calls
/// <c>SetSeq</c> without holding the notifier update lock on every path. An owner-skip early return (the range is a
/// migration or exclusive access this driver started, tested with <c>range.Owner == token</c>) is exempt.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM003SetSeqMissingOrUnlockedAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM003";

    private const string Description =
        "mmu_interval_set_seq \"must be called unconditionally from the invalidate callback ... under the same lock that is used to call mmu_interval_read_retry()\" (include/linux/mmu_notifier.h). " +
        "Without it a fault that raced the invalidation passes ReadRetry and commits a stale mapping; outside the lock, the check and the commit are not atomic against it. See docs/rules/HMM003.md.";

    internal static readonly DiagnosticDescriptor MissingDescriptor = new(
        Id,
        title: "Invalidate callback returns true without SetSeq, or calls SetSeq outside the notifier lock",
        messageFormat: "This path of the invalidate callback returns true without calling SetSeq(curSeq): a racing fault's ReadRetry will not see the invalidation",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    internal static readonly DiagnosticDescriptor UnlockedDescriptor = new(
        Id,
        title: "Invalidate callback returns true without SetSeq, or calls SetSeq outside the notifier lock",
        messageFormat: "SetSeq is called without holding {0} on every path: take the lock the fault path holds around ReadRetry first",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(MissingDescriptor, UnlockedDescriptor);

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(start =>
        {
            var known = KnownSymbols.Create(start.Compilation);
            if (!known.HasCallbacks || known.SetSeq is null)
                return;
            start.RegisterOperationBlockAction(block =>
            {
                if (block.OwningSymbol is not IMethodSymbol method || !known.IsInvalidateCallback(method))
                    return;
                var cfg = MethodGraphs.Body(block);
                if (cfg is null)
                    return;
                var observer = new Observer(block, known.UpdateLocksOf(method.ContainingType));
                if (LockFlowAnalysis.Analyze(cfg, known, observer, block.CancellationToken))
                    observer.ReportMissing();
            });
        });
    }

    private sealed class Observer : FlowObserver
    {
        private readonly OperationBlockAnalysisContext _context;
        private readonly ImmutableArray<ISymbol> _updateLocks;
        private readonly List<(SyntaxNode Return, IOperation? Held)> _missing = new();
        private IOperation? _firstAcquire;

        public Observer(OperationBlockAnalysisContext context, ImmutableArray<ISymbol> updateLocks)
        {
            _context = context;
            _updateLocks = updateLocks;
        }

        public override void OnCall(in FlowCall call, FlowState before)
        {
            if (!call.Facts.IsSetSeq)
                return;
            bool held = false;
            if (_updateLocks.IsEmpty)
            {
                held = before.MustHoldAny();
            }
            else
            {
                foreach (var l in _updateLocks)
                    held |= before.MustHold(l);
            }
            if (!held)
            {
                string which = _updateLocks.IsEmpty ? "the notifier update lock" : $"'{_updateLocks[0].Name}'";
                _context.ReportDiagnostic(Diagnostic.Create(UnlockedDescriptor, call.Operation.Syntax.GetLocation(), which));
            }
        }

        public override void OnAcquire(ISymbol key, IOperation site, FlowState before)
        {
            if (_firstAcquire is null || site.Syntax.SpanStart < _firstAcquire.Syntax.SpanStart)
                _firstAcquire = site;
        }

        public override void OnReturn(IOperation? returnedValue, SyntaxNode? syntax, FlowState before, FlowState after)
        {
            if (returnedValue?.ConstantValue is { HasValue: true, Value: false } || syntax is null)
                return;
            if (after.SetSeqCalled || after.OwnerMatched)
                return;
            IOperation? held = null;
            foreach (var h in before.Held)
            {
                if (h.Value.Definite && (held is null || h.Value.AcquiredAt.Syntax.SpanStart < held.Syntax.SpanStart))
                    held = h.Value.AcquiredAt;
            }
            _missing.Add((syntax, held));
        }

        // Reports the returns without SetSeq once the whole method was seen. The additional location tells the code fix
        // where SetSeq belongs: the lock held at the return, else the first lock the callback takes.
        public void ReportMissing()
        {
            foreach (var (syntax, held) in _missing)
            {
                var acquired = held ?? _firstAcquire;
                IEnumerable<Location> additional = acquired is null ? [] : [acquired.Syntax.GetLocation()];
                _context.ReportDiagnostic(Diagnostic.Create(MissingDescriptor, syntax.GetLocation(), additional));
            }
        }
    }
}
