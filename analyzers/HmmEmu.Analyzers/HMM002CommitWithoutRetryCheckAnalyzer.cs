using System.Collections.Generic;
using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM002: a device-table commit that is not preceded, on every path, by <c>notifier.ReadRetry(seq)</c> answering false
/// while a lock (the <c>[NotifierUpdateLock]</c>, if the type declares one) was held and is still held at the commit.
/// </summary>
/// <remarks>
/// A commit is a call to a <c>[DeviceMapCommit]</c> method anywhere, or, after a call to <c>Hmm.RangeFault</c> on some path:
/// a call into this compilation's code that hands over the faulted range (or its <c>HmmPfns</c>) and does not return
/// bool (a predicate such as <c>HasZeroPage(range)</c> inspects, it does not commit), or a store of a value read from
/// <c>HmmPfns</c> into an array or indexer that is not a local of the method.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM002CommitWithoutRetryCheckAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM002";

    internal static readonly DiagnosticDescriptor Descriptor = new(
        Id,
        title: "Device-table commit not preceded by ReadRetry under the notifier lock",
        messageFormat: "{0} commits a fault result without ReadRetry(seq) having answered false under {1}, still held, on every path to it: an invalidation since ReadBegin would leave a stale device mapping",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "The sequence read by ReadBegin is only a promise: an invalidation may run during or after RangeFault. The fault result may be written to the device's tables only after mmu_interval_read_retry() answered false under the lock the invalidate callback takes around SetSeq, and before that lock is released. See docs/rules/HMM002.md.");

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
            if (known.ReadRetry is null)
                return;
            var assembly = start.Compilation.Assembly;
            start.RegisterOperationBlockAction(block =>
            {
                if (block.OwningSymbol is not IMethodSymbol method || known.IsDeviceMapCommit(method))
                    return;   // a commit helper's callers carry its contract
                var (faults, commits) = Survey(block, known);
                if (!faults && !commits)
                    return;
                var cfg = MethodGraphs.Body(block);
                if (cfg is null)
                    return;
                var observer = new Observer(block, known, assembly, faults, known.UpdateLocksOf(method.ContainingType));
                if (LockFlowAnalysis.Analyze(cfg, known, observer, block.CancellationToken))
                    observer.Report();
            });
        });
    }

    // Whether the method calls RangeFault, and whether it calls a [DeviceMapCommit] method.
    private static (bool Faults, bool Commits) Survey(in OperationBlockAnalysisContext context, KnownSymbols known)
    {
        bool faults = false, commits = false;
        foreach (var block in context.OperationBlocks)
        {
            foreach (var op in block.DescendantsAndSelf())
            {
                if (op is IInvocationOperation invocation)
                {
                    faults |= KnownSymbols.IsMethod(invocation.TargetMethod, known.RangeFault);
                    commits |= known.IsDeviceMapCommit(invocation.TargetMethod);
                }
            }
        }
        return (faults, commits);
    }

    private sealed class Observer : FlowObserver
    {
        private readonly OperationBlockAnalysisContext _context;
        private readonly KnownSymbols _known;
        private readonly IAssemblySymbol _assembly;
        private readonly bool _faults;
        private readonly ImmutableArray<ISymbol> _updateLocks;
        private readonly HashSet<ISymbol> _faultedRanges = new(SymbolEqualityComparer.Default);
        private readonly List<Candidate> _candidates = new();

        public Observer(OperationBlockAnalysisContext context, KnownSymbols known, IAssemblySymbol assembly, bool faults, ImmutableArray<ISymbol> updateLocks)
        {
            _context = context;
            _known = known;
            _assembly = assembly;
            _faults = faults;
            _updateLocks = updateLocks;
        }

        public override void OnOperation(IOperation operation, FlowState before)
        {
            switch (operation)
            {
                case IInvocationOperation invocation:
                    var target = invocation.TargetMethod;
                    if (KnownSymbols.IsMethod(target, _known.RangeFault))
                    {
                        foreach (var arg in invocation.Arguments)
                        {
                            if (Analysis!.KeyOf(arg.Value) is { } range)
                                _faultedRanges.Add(range);
                        }
                        return;
                    }
                    if (_known.IsDeviceMapCommit(target))
                    {
                        _candidates.Add(new Candidate(invocation, Validated(before), null));
                        return;
                    }
                    if (_faults && before.Faulted && SymbolEqualityComparer.Default.Equals(target.ContainingAssembly, _assembly)
                        && target.ReturnType.SpecialType != SpecialType.System_Boolean)
                    {
                        var keys = new List<ISymbol>();
                        foreach (var arg in invocation.Arguments)
                        {
                            if (Analysis!.KeyOf(arg.Value) is { } key)
                                keys.Add(key);
                        }
                        if (keys.Count > 0)
                            _candidates.Add(new Candidate(invocation, Validated(before), keys));
                    }
                    return;
                case ISimpleAssignmentOperation { Target: var store } assignment when before.Faulted && IsTableStore(store):
                    if (ReadsPfns(assignment.Value))
                        _candidates.Add(new Candidate(assignment, Validated(before), null));
                    return;
            }
        }

        public void Report()
        {
            foreach (var c in _candidates)
            {
                if (c.Validated)
                    continue;
                if (c.ArgumentKeys is not null && !HandsOverFaultResult(c.ArgumentKeys))
                    continue;
                string what = c.Operation is IInvocationOperation inv ? $"'{inv.TargetMethod.ContainingType?.Name}.{inv.TargetMethod.Name}'" : "This store";
                string which = _updateLocks.IsEmpty ? "the notifier update lock" : $"'{_updateLocks[0].Name}'";
                _context.ReportDiagnostic(Diagnostic.Create(Descriptor, c.Operation.Syntax.GetLocation(), what, which));
            }
        }

        private bool HandsOverFaultResult(List<ISymbol> keys)
        {
            foreach (var k in keys)
            {
                if (_faultedRanges.Contains(k) || SymbolEqualityComparer.Default.Equals(k, _known.HmmPfns))
                    return true;
            }
            return false;
        }

        private bool Validated(FlowState state)
        {
            if (_updateLocks.IsEmpty)
                return !state.Validated.IsEmpty;
            foreach (var l in _updateLocks)
            {
                if (state.Validated.Contains(l))
                    return true;
            }
            return false;
        }

        // An element of an array or indexer that outlives the method (not a local, not the range's own HmmPfns).
        private bool IsTableStore(IOperation store)
        {
            IOperation? table = store switch
            {
                IArrayElementReferenceOperation element => element.ArrayReference,
                IPropertyReferenceOperation { Property.IsIndexer: true } indexer => indexer.Instance,
                IInlineArrayAccessOperation inline => inline.Instance,
                _ => null,
            };
            if (table is null)
                return false;
            var key = Analysis!.KeyOf(table);
            return key is not null and not ILocalSymbol && !SymbolEqualityComparer.Default.Equals(key, _known.HmmPfns);
        }

        private bool ReadsPfns(IOperation value)
        {
            foreach (var op in value.DescendantsAndSelf())
            {
                if (op is IPropertyReferenceOperation or ILocalReferenceOperation
                    && SymbolEqualityComparer.Default.Equals(Analysis!.KeyOf(op), _known.HmmPfns))
                    return true;
            }
            return false;
        }
    }

    private sealed class Candidate
    {
        public Candidate(IOperation operation, bool validated, List<ISymbol>? argumentKeys)
        {
            Operation = operation;
            Validated = validated;
            ArgumentKeys = argumentKeys;
        }

        public IOperation Operation { get; }

        public bool Validated { get; }

        public List<ISymbol>? ArgumentKeys { get; }
    }
}
