using System.Collections.Generic;
using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using static HmmEmu.Analyzers.Flow.Operands;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM004: in a method that calls <c>Hmm.RangeFault</c>, (1) a page looked up from the fault result (a value derived
/// from <c>HmmRange.HmmPfns</c> handed to the <c>pfn</c> parameter of a <c>PhysicalMemory</c>, <c>DevicePagemap</c>,
/// <c>PciDev</c> or <c>Mm</c> method) outside the window where <c>ReadRetry(seq)</c> answered false under a lock still
/// held; (2) a second <c>RangeFault</c> on the same range reached from an earlier one without a new
/// <c>NotifierSeq</c> in between, or, when the method uses per-entry requests (stores into <c>HmmPfns</c>, or a
/// non-zero <c>PfnFlagsMask</c>), without rewriting those requests in between.
/// </summary>
/// <remarks>
/// Reading the result array itself (flag tests, predicates that decide to retry) is allowed anywhere: it is the page
/// behind a pfn that may be freed and reused until the sequence is validated under the lock. Committing the result to
/// a device table is HMM002's business.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM004FaultResultUsedOutsideRetryWindowAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM004";

    private const string Title = "Fault result used outside the ReadRetry window, or range reused without reinitialising it";

    private const string Description =
        "The pfns hmm_range_fault() returns point to pages the driver holds no reference on: they stay valid only while the notifier " +
        "sequence is validated by mmu_interval_read_retry() under the notifier lock (Xe 0a98219bcc96). A range handed to hmm_range_fault() " +
        "again after -EBUSY needs a fresh sequence and, if it uses per-entry requests, its input pfns rewritten: the first call overwrote " +
        "them with its output (nouveau 0cafc62e4daf). See docs/rules/HMM004.md.";

    internal static readonly DiagnosticDescriptor PageDescriptor = new(
        Id,
        Title,
        messageFormat: "'{0}' looks up a page from the fault result outside the window where ReadRetry(seq) has answered false under a lock still held: the page may have been freed and reused since RangeFault",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    internal static readonly DiagnosticDescriptor ReuseDescriptor = new(
        Id,
        Title,
        messageFormat: "RangeFault runs again on '{0}' after an earlier RangeFault without {1} in between: {2}",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    // The kernel types whose methods look a page up by its frame number ("struct page"), and the ones among them that
    // only compute with the number.
    private static readonly string[] s_pageTypes =
    [
        "HmmEmu.Kernel.Memory.PhysicalMemory",
        "HmmEmu.Kernel.Migration.DevicePagemap",
        "HmmEmu.Kernel.Bus.PciDev",
        "HmmEmu.Kernel.Vm.Mm",
    ];

    private static readonly ImmutableHashSet<string> s_pureMethods = ImmutableHashSet.Create("IsValidPfn", "IsDevicePage", "Contains");

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(PageDescriptor, ReuseDescriptor);

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(start =>
        {
            var known = KnownSymbols.Create(start.Compilation);
            if (known.RangeFault is null || known.HmmPfns is null)
                return;
            var pageTypes = ImmutableHashSet.CreateBuilder<INamedTypeSymbol>(SymbolEqualityComparer.Default);
            foreach (string name in s_pageTypes)
            {
                if (start.Compilation.GetTypeByMetadataName(name) is { } type)
                    pageTypes.Add(type);
            }
            var pages = pageTypes.ToImmutable();
            var flagsMask = KnownSymbols.FindFieldOrProperty(known.HmmRange, "PfnFlagsMask");
            var notifierSeq = KnownSymbols.FindFieldOrProperty(known.HmmRange, "NotifierSeq");
            start.RegisterOperationBlockAction(block =>
            {
                if (block.OwningSymbol is not IMethodSymbol method || !CallsRangeFault(block, known))
                    return;
                var cfg = MethodGraphs.Body(block);
                if (cfg is null)
                    return;
                var observer = new Observer(block, known, pages, FaultResult.Of(cfg, known), known.UpdateLocksOf(method.ContainingType));
                if (!LockFlowAnalysis.Analyze(cfg, known, observer, block.CancellationToken))
                    return;
                new ReuseCheck(block, cfg, known, observer.Analysis!, flagsMask, notifierSeq).Run();
            });
        });
    }

    private static bool CallsRangeFault(in OperationBlockAnalysisContext context, KnownSymbols known)
    {
        foreach (var block in context.OperationBlocks)
        {
            foreach (var op in block.DescendantsAndSelf())
            {
                if (op is IInvocationOperation invocation && KnownSymbols.IsMethod(invocation.TargetMethod, known.RangeFault))
                    return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Which values of one method's graph derive from a fault result: a read of <c>HmmPfns</c>, and (flow-insensitively)
    /// every local and flow capture assigned from an expression that reads one, such as a foreach variable over it.
    /// </summary>
    private sealed class FaultResult
    {
        private readonly KnownSymbols _known;
        private readonly HashSet<ILocalSymbol> _locals = new(SymbolEqualityComparer.Default);
        private readonly HashSet<CaptureId> _captures = new();

        private FaultResult(KnownSymbols known) => _known = known;

        public static FaultResult Of(ControlFlowGraph cfg, KnownSymbols known)
        {
            var result = new FaultResult(known);
            var assignments = new List<(ILocalSymbol? Local, CaptureId? Capture, IOperation Value)>();
            foreach (var block in cfg.Blocks)
            {
                foreach (var root in Roots(block))
                {
                    foreach (var op in root.DescendantsAndSelf())
                    {
                        switch (op)
                        {
                            case ISimpleAssignmentOperation { Target: ILocalReferenceOperation target } assign:
                                assignments.Add((target.Local, null, assign.Value));
                                break;
                            case IFlowCaptureOperation capture:
                                assignments.Add((null, capture.Id, capture.Value));
                                break;
                        }
                    }
                }
            }
            bool changed = true;
            while (changed)
            {
                changed = false;
                foreach (var (local, capture, value) in assignments)
                {
                    bool already = local is not null ? result._locals.Contains(local) : result._captures.Contains(capture!.Value);
                    if (already || !result.Derives(value))
                        continue;
                    if (local is not null)
                        result._locals.Add(local);
                    else
                        result._captures.Add(capture!.Value);
                    changed = true;
                }
            }
            return result;
        }

        /// <summary>Whether <paramref name="value"/> reads a fault result.</summary>
        public bool Derives(IOperation value)
        {
            foreach (var op in value.DescendantsAndSelf())
            {
                switch (op)
                {
                    case IPropertyReferenceOperation p when SymbolEqualityComparer.Default.Equals(p.Property.OriginalDefinition, _known.HmmPfns):
                        return true;
                    case ILocalReferenceOperation l when _locals.Contains(l.Local):
                        return true;
                    case IFlowCaptureReferenceOperation r when _captures.Contains(r.Id):
                        return true;
                }
            }
            return false;
        }
    }

    private static IEnumerable<IOperation> Roots(BasicBlock block)
    {
        foreach (var op in block.Operations)
            yield return op;
        if (block.BranchValue is not null)
            yield return block.BranchValue;
    }

    private sealed class Observer : FlowObserver
    {
        private readonly OperationBlockAnalysisContext _context;
        private readonly KnownSymbols _known;
        private readonly ImmutableHashSet<INamedTypeSymbol> _pageTypes;
        private readonly FaultResult _result;
        private readonly ImmutableArray<ISymbol> _updateLocks;

        public Observer(OperationBlockAnalysisContext context, KnownSymbols known, ImmutableHashSet<INamedTypeSymbol> pageTypes, FaultResult result, ImmutableArray<ISymbol> updateLocks)
        {
            _context = context;
            _known = known;
            _pageTypes = pageTypes;
            _result = result;
            _updateLocks = updateLocks;
        }

        public override void OnOperation(IOperation operation, FlowState before)
        {
            if (operation is not IInvocationOperation invocation || !before.Faulted || Validated(before))
                return;
            var target = invocation.TargetMethod;
            if (target.ContainingType is not { } type || !_pageTypes.Contains(type.OriginalDefinition) || s_pureMethods.Contains(target.Name))
                return;
            foreach (var arg in invocation.Arguments)
            {
                if (arg.Parameter is { Name: "pfn" } && _result.Derives(arg.Value))
                {
                    _context.ReportDiagnostic(Diagnostic.Create(PageDescriptor, invocation.Syntax.GetLocation(), $"{type.Name}.{target.Name}"));
                    return;
                }
            }
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
    }

    /// <summary>
    /// Part 2 of the rule: from each <c>RangeFault(range)</c>, a forward search of the graph for another
    /// <c>RangeFault(range)</c> along a path that neither stores a new <c>NotifierSeq</c> into the range nor (if the
    /// method uses per-entry requests) rewrites its <c>HmmPfns</c>. A new range in the same local ends both searches.
    /// </summary>
    private sealed class ReuseCheck
    {
        private enum Kind : byte
        {
            Fault,
            NewSeq,
            NewRequests,
            NewRange,
        }

        private readonly OperationBlockAnalysisContext _context;
        private readonly ControlFlowGraph _cfg;
        private readonly KnownSymbols _known;
        private readonly LockFlowAnalysis _analysis;
        private readonly ISymbol? _flagsMask;
        private readonly ISymbol? _notifierSeq;
        private readonly List<(Kind Kind, ISymbol? Range, IOperation Site)>[] _events;
        private readonly HashSet<IOperation> _reported = new();
        private readonly List<SyntaxNode> _stores = new();
        private readonly Dictionary<CaptureId, IOperation> _captures = new();
        private bool _perEntryRequests;

        public ReuseCheck(OperationBlockAnalysisContext context, ControlFlowGraph cfg, KnownSymbols known, LockFlowAnalysis analysis, ISymbol? flagsMask, ISymbol? notifierSeq)
        {
            _context = context;
            _cfg = cfg;
            _known = known;
            _analysis = analysis;
            _flagsMask = flagsMask;
            _notifierSeq = notifierSeq;
            _events = new List<(Kind, ISymbol?, IOperation)>[cfg.Blocks.Length];
        }

        public void Run()
        {
            foreach (var block in _cfg.Blocks)
            {
                foreach (var root in Roots(block))
                {
                    foreach (var op in root.DescendantsAndSelf())
                    {
                        if (op is IFlowCaptureOperation capture)
                            _captures[capture.Id] = capture.Value;
                    }
                }
            }
            foreach (var block in _cfg.Blocks)
            {
                var list = new List<(Kind, ISymbol?, IOperation)>();
                foreach (var root in Roots(block))
                    Collect(root, list);
                _events[block.Ordinal] = list;
            }
            // A loop that stores into HmmPfns rewrites the requests (however many times it runs): its test counts as
            // the rewrite, so the path that runs the body zero times is not taken for one that skips it.
            foreach (var block in _cfg.Blocks)
            {
                if (block.BranchValue is { } test && FillLoopOf(test.Syntax) is not null)
                    _events[block.Ordinal].Add((Kind.NewRequests, null, test));
            }
            for (int b = 0; b < _events.Length; b++)
            {
                for (int i = 0; i < _events[b].Count; i++)
                {
                    var (kind, range, _) = _events[b][i];
                    if (kind != Kind.Fault || range is null)
                        continue;
                    Search(b, i, range, Kind.NewSeq, "a new sequence from ReadBegin stored in NotifierSeq",
                        "RangeFault checks the old sequence first and answers EBUSY again, until the deadline");
                    if (_perEntryRequests)
                    {
                        Search(b, i, range, Kind.NewRequests, "rewriting the per-entry requests in HmmPfns",
                            "the earlier call replaced them with its output, so this one faults what that output asks for, not what the driver wanted");
                    }
                }
            }
        }

        // Post-order, as evaluated; lambdas and local functions run elsewhere.
        private void Collect(IOperation operation, List<(Kind, ISymbol?, IOperation)> list)
        {
            if (operation is IFlowAnonymousFunctionOperation or IAnonymousFunctionOperation or ILocalFunctionOperation)
                return;
            foreach (var child in operation.ChildOperations)
                Collect(child, list);
            switch (operation)
            {
                case IInvocationOperation invocation when KnownSymbols.IsMethod(invocation.TargetMethod, _known.RangeFault):
                    foreach (var arg in invocation.Arguments)
                        list.Add((Kind.Fault, _analysis.KeyOf(arg.Value), invocation));
                    break;
                case IInvocationOperation invocation when IsFill(invocation.TargetMethod):
                    foreach (var op in invocation.DescendantsAndSelf())
                    {
                        if (IsPfnsArray(op))
                        {
                            list.Add((Kind.NewRequests, null, invocation));
                            break;
                        }
                    }
                    break;
                case ISimpleAssignmentOperation { Target: ILocalReferenceOperation or IParameterReferenceOperation } assign:
                    var key = assign.Target is ILocalReferenceOperation l ? (ISymbol)l.Local : ((IParameterReferenceOperation)assign.Target).Parameter;
                    if (SymbolEqualityComparer.Default.Equals(assign.Target.Type, _known.HmmRange))
                        list.Add((Kind.NewRange, key, assign));
                    break;
                case ISimpleAssignmentOperation { Target: IPropertyReferenceOperation property } assign:
                    var member = property.Property.OriginalDefinition;
                    if (SymbolEqualityComparer.Default.Equals(member, _notifierSeq))
                    {
                        list.Add((Kind.NewSeq, InstanceKey(property), assign));
                    }
                    else if (SymbolEqualityComparer.Default.Equals(member, _known.HmmPfns))
                    {
                        list.Add((Kind.NewRequests, null, assign));
                    }
                    else if (SymbolEqualityComparer.Default.Equals(member, _flagsMask))
                    {
                        if (IsZero(assign.Value))
                            list.Add((Kind.NewRequests, null, assign));
                        else
                            _perEntryRequests = true;
                    }
                    break;
                case IAssignmentOperation assign when Captured(assign.Target) is IArrayElementReferenceOperation element && IsPfnsArray(element.ArrayReference):
                    _perEntryRequests = true;
                    _stores.Add(assign.Syntax);
                    list.Add((Kind.NewRequests, null, assign));
                    break;
            }
        }

        // What a flow capture reference stands for (the CFG captures an assignment target whose value branches).
        private IOperation Captured(IOperation operation)
        {
            for (int depth = 0; depth < 8 && operation is IFlowCaptureReferenceOperation r && _captures.TryGetValue(r.Id, out var value); depth++)
                operation = value;
            return operation;
        }

        // The range an object-initializer member belongs to is the one the new object is assigned to.
        private ISymbol? InstanceKey(IPropertyReferenceOperation property)
        {
            if (property.Instance is IInstanceReferenceOperation { ReferenceKind: InstanceReferenceKind.ImplicitReceiver })
            {
                for (var parent = property.Parent; parent is not null; parent = parent.Parent)
                {
                    if (parent is ISimpleAssignmentOperation { Value: IObjectCreationOperation } outer)
                        return _analysis.KeyOf(outer.Target);
                    if (parent is IFlowCaptureOperation)
                        return null;
                }
                return null;
            }
            return _analysis.KeyOf(property.Instance);
        }

        private bool IsPfnsArray(IOperation operation)
        {
            operation = Strip(operation);
            if (operation is IPropertyReferenceOperation p)
                return SymbolEqualityComparer.Default.Equals(p.Property.OriginalDefinition, _known.HmmPfns);
            return SymbolEqualityComparer.Default.Equals(_analysis.KeyOf(operation), _known.HmmPfns);
        }

        // The loop whose test (condition, or foreach header) is 'test', if its body stores into HmmPfns.
        private SyntaxNode? FillLoopOf(SyntaxNode test)
        {
            foreach (var node in test.AncestorsAndSelf())
            {
                SyntaxNode? body = node switch
                {
                    ForStatementSyntax f when f.Condition is not null && f.Condition.Span.Contains(test.Span) => f.Statement,
                    WhileStatementSyntax w when w.Condition.Span.Contains(test.Span) => w.Statement,
                    DoStatementSyntax d when d.Condition.Span.Contains(test.Span) => d.Statement,
                    CommonForEachStatementSyntax e when !e.Statement.Span.Contains(test.Span) => e.Statement,
                    _ => null,
                };
                if (body is null)
                {
                    if (node is StatementSyntax)
                        return null;
                    continue;
                }
                foreach (var store in _stores)
                {
                    if (body.Span.Contains(store.Span))
                        return node;
                }
                return null;
            }
            return null;
        }

        private static bool IsFill(IMethodSymbol method) =>
            method.Name is "Fill" or "Clear" && method.ContainingType?.Name is "Array" or "Span" or "MemoryExtensions";

        private static bool IsZero(IOperation value) =>
            value.ConstantValue is { HasValue: true, Value: ulong u } && u == 0 || Strip(value).ConstantValue is { HasValue: true, Value: 0 or 0L or 0U };

        private void Search(int startBlock, int startIndex, ISymbol range, Kind kill, string missing, string why)
        {
            var seen = new HashSet<int>();
            var pending = new Stack<(int Block, int Index)>();
            pending.Push((startBlock, startIndex + 1));
            while (pending.Count > 0)
            {
                var (b, from) = pending.Pop();
                bool stopped = false;
                var list = _events[b];
                for (int i = from; i < list.Count && !stopped; i++)
                {
                    var (kind, key, site) = list[i];
                    if (kind == Kind.Fault && SymbolEqualityComparer.Default.Equals(key, range))
                    {
                        if (_reported.Add(site))
                            _context.ReportDiagnostic(Diagnostic.Create(ReuseDescriptor, site.Syntax.GetLocation(), range.Name, missing, why));
                        stopped = true;
                    }
                    else if (kind == Kind.NewRange && SymbolEqualityComparer.Default.Equals(key, range)
                        || kind == kill && (key is null || SymbolEqualityComparer.Default.Equals(key, range)))
                    {
                        stopped = true;
                    }
                }
                if (stopped)
                    continue;
                var block = _cfg.Blocks[b];
                foreach (var branch in new[] { block.FallThroughSuccessor, block.ConditionalSuccessor })
                {
                    if (branch?.Destination is { } dest && seen.Add(dest.Ordinal))
                        pending.Push((dest.Ordinal, 0));
                }
            }
        }
    }
}
