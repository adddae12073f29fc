using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers;

/// <summary>
/// The machinery HMM005 and HMM006 share: a call of some kind made while holding a lock that an invalidate callback
/// takes. The locks taken inside invalidate callbacks are collected over the whole compilation and the calls are
/// matched against them at compilation end (as vs-threading's VSTHRD010 does), so in the IDE these show with
/// full-solution analysis; a lock marked <c>[NotifierUpdateLock]</c> is known up front and reported as the code is typed.
/// A derived rule says which calls count (<see cref="Classify"/>) and whether a method can contain one at all.
/// </summary>
public abstract class CallUnderCallbackLockAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The descriptor for reports made as the code is typed (the lock is the [NotifierUpdateLock]).</summary>
    private protected abstract DiagnosticDescriptor ImmediateDescriptor { get; }

    /// <summary>The descriptor for reports made at compilation end.</summary>
    private protected abstract DiagnosticDescriptor EndDescriptor { get; }

    /// <summary>Whether a method whose survey found these kinds of calls can hold a call this rule reports.</summary>
    private protected abstract bool MayContain(bool waits, bool reclaims);

    /// <summary>What the call does that this rule reports (the message's "{1}"), or null if it does not count.</summary>
    private protected abstract string? Classify(in FlowCall call, bool inCallback);

    /// <inheritdoc />
    public sealed override void Initialize(AnalysisContext context)
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
            start.RegisterCompilationEndAction(end => facts.ReportAtEnd(end, EndDescriptor));
        });
    }

    private void AnalyzeMethod(OperationBlockAnalysisContext block, KnownSymbols known, CallbackLocks facts)
    {
        if (block.OwningSymbol is not IMethodSymbol method)
            return;
        bool isCallback = known.IsInvalidateCallback(method);
        var (acquires, waits, reclaims) = MethodGraphs.Survey(block, known);
        bool relevant = MayContain(waits, reclaims);
        if (!acquires || !(relevant || isCallback))
            return;
        var body = MethodGraphs.Body(block);
        if (body is null)
            return;
        string name = $"{method.ContainingType?.Name}.{method.Name}";
        LockFlowAnalysis.Analyze(body, known, new Observer(this, block, known, facts, isCallback, name), block.CancellationToken);
        if (!relevant)
            return;
        foreach (var nested in MethodGraphs.Nested(body))
            LockFlowAnalysis.Analyze(nested, known, new Observer(this, block, known, facts, isCallback: false, name), block.CancellationToken);
    }

    private sealed class Observer(CallUnderCallbackLockAnalyzer rule, OperationBlockAnalysisContext context, KnownSymbols known,
        CallbackLocks facts, bool isCallback, string method) : FlowObserver
    {
        public override void OnAcquire(ISymbol key, IOperation site, FlowState before)
        {
            if (isCallback)
                facts.TakenInCallback(key, method);
        }

        public override void OnCall(in FlowCall call, FlowState before)
        {
            string? what = rule.Classify(call, isCallback);
            if (what is null)
                return;
            foreach (var held in before.Held)
            {
                if (held.Key is not (IFieldSymbol or IPropertySymbol))
                    continue;
                var location = Describe.Where(call.Operation);
                string callee = Describe.Callee(call);
                if (known.IsUpdateLock(held.Key))
                    context.ReportDiagnostic(Diagnostic.Create(rule.ImmediateDescriptor, location, callee, what, held.Key.Name, "(it is the [NotifierUpdateLock])"));
                else
                    facts.CallWhileHolding(held.Key, location, callee, what);
            }
        }
    }
}
