using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM009: notifier and mm lifetime misuse. (a) An invalidate callback removes an interval notifier
/// (<c>MmuIntervalNotifier.Remove</c>), itself or through a method of its own type; (c) it drops an mm reference
/// (<c>Mm.MmPut</c>) the same way; (b) a method that reaches the mm through a stored field or property calls
/// <c>Hmm.RangeFault</c> or <c>ReadBegin</c> without a reference taken by a successful <c>MmGetNotZero</c> on every path
/// before it, unless every caller in the compilation holds one at the call (an internal or private method only).
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM009NotifierLifetimeAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM009";

    private const string Title = "Notifier or mm lifetime misuse";

    private const string Description =
        "mmu_interval_notifier_remove \"cannot be called from any ops callback\": it waits for running callbacks, so from one it waits for itself. " +
        "mmput from a callback may be the last reference, and then exit_mmap runs inside the invalidation. A fault on an mm the driver keeps in a field " +
        "needs a reference (mmget_not_zero) first, or the process can exit under it (Gunthorpe's 2019 get/put scheme, 6d7c3cde93c1). See docs/rules/HMM009.md.";

    internal static readonly DiagnosticDescriptor RemoveInCallbackDescriptor = new(
        Id,
        Title,
        messageFormat: "The invalidate callback '{0}' removes an interval notifier{1}: Remove waits for running callbacks, so it would wait for itself; defer the removal to a work queue or to release",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    internal static readonly DiagnosticDescriptor MmPutInCallbackDescriptor = new(
        Id,
        Title,
        messageFormat: "The invalidate callback '{0}' drops an mm reference{1}: if it is the last, exit_mmap runs inside the invalidation; put the reference outside the callback (a work item)",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    internal static readonly DiagnosticDescriptor NoMmReferenceDescriptor = new(
        Id,
        Title,
        messageFormat: "'{0}' calls {1} on a stored mm without a reference taken on every path before it: the process may exit meanwhile; take one with 'if (!mm.MmGetNotZero()) return ...;' and put it in a finally{2}",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description,
        customTags: WellKnownDiagnosticTags.CompilationEnd);

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(RemoveInCallbackDescriptor, MmPutInCallbackDescriptor, NoMmReferenceDescriptor);

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(start =>
        {
            var symbols = new Symbols(start.Compilation);
            if (symbols.Mm is null || symbols.Notifier is null)
                return;
            var known = KnownSymbols.Create(start.Compilation);
            start.RegisterSymbolStartAction(typeStart => CallbacksOfType(typeStart, known, symbols), SymbolKind.NamedType);
            var references = new MmReferences();
            start.RegisterOperationBlockAction(block => references.Collect(block, symbols));
            start.RegisterCompilationEndAction(end => references.Report(end));
        });
    }

    // ---- (a) and (c): Remove and MmPut reached from an invalidate callback of the type ---------------------------------

    private static void CallbacksOfType(SymbolStartAnalysisContext typeStart, KnownSymbols known, Symbols symbols)
    {
        var type = (INamedTypeSymbol)typeStart.Symbol;
        var calls = new ConcurrentDictionary<IMethodSymbol, ImmutableArray<(IInvocationOperation Site, Kind Kind, IMethodSymbol Target)>>(SymbolEqualityComparer.Default);
        typeStart.RegisterOperationBlockAction(block =>
        {
            if (block.OwningSymbol is not IMethodSymbol method)
                return;
            var sites = ImmutableArray.CreateBuilder<(IInvocationOperation, Kind, IMethodSymbol)>();
            foreach (var root in block.OperationBlocks)
            {
                foreach (var invocation in Invocations(root))
                {
                    var target = (invocation.TargetMethod.ReducedFrom ?? invocation.TargetMethod).OriginalDefinition;
                    if (KnownSymbols.IsMethod(target, symbols.Remove))
                        sites.Add((invocation, Kind.Remove, target));
                    else if (KnownSymbols.IsMethod(target, symbols.MmPut))
                        sites.Add((invocation, Kind.MmPut, target));
                    else if (SymbolEqualityComparer.Default.Equals(target.ContainingType, type) && target.MethodKind == MethodKind.Ordinary
                             && !target.IsVirtual && !target.IsAbstract && !target.IsOverride)
                        sites.Add((invocation, Kind.Call, target));
                }
            }
            calls[method.OriginalDefinition] = sites.ToImmutable();
        });
        typeStart.RegisterSymbolEndAction(end =>
        {
            foreach (var entry in calls)
            {
                if (!known.IsInvalidateCallback(entry.Key))
                    continue;
                string callback = $"{type.Name}.{entry.Key.Name}";
                foreach (var (site, kind, target) in entry.Value)
                {
                    if (kind != Kind.Call)
                    {
                        end.ReportDiagnostic(Diagnostic.Create(DescriptorFor(kind), site.Syntax.GetLocation(), callback, ""));
                        continue;
                    }
                    foreach (var reached in new[] { Kind.Remove, Kind.MmPut })
                    {
                        var path = PathTo(target, reached, calls);
                        if (path is not null)
                            end.ReportDiagnostic(Diagnostic.Create(DescriptorFor(reached), site.Syntax.GetLocation(), callback, $" (through {path})"));
                    }
                }
            }
        });
    }

    private static DiagnosticDescriptor DescriptorFor(Kind kind) => kind == Kind.Remove ? RemoveInCallbackDescriptor : MmPutInCallbackDescriptor;

    // "Helper" or "Helper → Inner" if 'from' reaches a call of kind 'kind' through methods of the type; else null.
    private static string? PathTo(IMethodSymbol from, Kind kind,
        ConcurrentDictionary<IMethodSymbol, ImmutableArray<(IInvocationOperation Site, Kind Kind, IMethodSymbol Target)>> calls)
    {
        var seen = new HashSet<IMethodSymbol>(SymbolEqualityComparer.Default);
        var pending = new Queue<(IMethodSymbol Method, string Path)>();
        pending.Enqueue((from, from.Name));
        seen.Add(from);
        while (pending.Count > 0)
        {
            var (method, path) = pending.Dequeue();
            if (!calls.TryGetValue(method, out var sites))
                continue;
            foreach (var (_, k, target) in sites)
            {
                if (k == kind)
                    return path;
                if (k == Kind.Call && seen.Add(target))
                    pending.Enqueue((target, path + " → " + target.Name));
            }
        }
        return null;
    }

    // The invocations that run when the method runs: not those in lambdas or local functions (deferred work is the fix).
    private static IEnumerable<IInvocationOperation> Invocations(IOperation root)
    {
        var pending = new Stack<IOperation>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var op = pending.Pop();
            if (op is IAnonymousFunctionOperation or ILocalFunctionOperation)
                continue;
            if (op is IInvocationOperation invocation)
                yield return invocation;
            foreach (var child in op.ChildOperations)
                pending.Push(child);
        }
    }

    private enum Kind
    {
        Remove,
        MmPut,
        Call,
    }

    // ---- (b): a fault on a stored mm without a reference ------------------------------------------------------------

    private sealed class MmReferences
    {
        private readonly ConcurrentDictionary<IMethodSymbol, Unguarded> _unguarded = new(SymbolEqualityComparer.Default);
        private readonly ConcurrentDictionary<IMethodSymbol, ConcurrentQueue<(IMethodSymbol Caller, bool Held)>> _callers = new(SymbolEqualityComparer.Default);
        private readonly ConcurrentDictionary<IMethodSymbol, bool> _referenced = new(SymbolEqualityComparer.Default);

        public void Collect(OperationBlockAnalysisContext block, Symbols symbols)
        {
            if (block.OwningSymbol is not IMethodSymbol method)
                return;
            method = method.OriginalDefinition;
            var uses = new List<IInvocationOperation>();
            var sourceCalls = new List<IInvocationOperation>();
            bool takesReference = false, storedMm = false;
            foreach (var root in block.OperationBlocks)
            {
                foreach (var op in root.DescendantsAndSelf())
                {
                    switch (op)
                    {
                        case IInvocationOperation invocation:
                            var target = (invocation.TargetMethod.ReducedFrom ?? invocation.TargetMethod).OriginalDefinition;
                            if (KnownSymbols.IsMethod(target, symbols.RangeFault) || KnownSymbols.IsMethod(target, symbols.ReadBegin))
                                uses.Add(invocation);
                            else if (KnownSymbols.IsMethod(target, symbols.MmGetNotZero))
                                takesReference = true;
                            else if (target.Locations.Any(l => l.IsInSource))
                                sourceCalls.Add(invocation);
                            break;
                        case IMethodReferenceOperation reference:
                            _referenced[reference.Method.OriginalDefinition] = true;
                            break;
                        case IFieldReferenceOperation field when IsMmOrNotifier(field.Type, symbols):
                            storedMm = true;
                            break;
                        case IPropertyReferenceOperation property when IsMmOrNotifier(property.Type, symbols):
                            storedMm = true;
                            break;
                    }
                }
            }
            if (uses.Count == 0 && sourceCalls.Count == 0)
                return;
            // Without an MmGetNotZero in the method no reference is held anywhere in it: no graph needed.
            Dictionary<SyntaxNode, bool>? held = null;
            if (takesReference)
            {
                var cfg = MethodGraphs.Body(block);
                if (cfg is null)
                    return;
                var flow = new MmReferenceFlow(cfg, symbols);
                if (!flow.Run(block.CancellationToken))
                    return;
                held = flow.HeldAt;
            }
            bool HeldAt(IInvocationOperation site) => held is not null && held.TryGetValue(site.Syntax, out bool h) && h;
            foreach (var call in sourceCalls)
            {
                var callee = (call.TargetMethod.ReducedFrom ?? call.TargetMethod).OriginalDefinition;
                _callers.GetOrAdd(callee, _ => new ConcurrentQueue<(IMethodSymbol, bool)>()).Enqueue((method, HeldAt(call)));
            }
            bool checkedMethod = storedMm && !method.Parameters.Any(p => SymbolEqualityComparer.Default.Equals(p.Type, symbols.HmmRange));
            if (!checkedMethod)
                return;
            var unguarded = uses.Where(u => !HeldAt(u) && InBody(u)).ToList();
            if (unguarded.Count > 0)
                _unguarded[method] = new Unguarded(unguarded.Select(u => (u.Syntax.GetLocation(), $"{u.TargetMethod.ContainingType.Name}.{u.TargetMethod.Name}")).ToImmutableArray());
        }

        // Uses inside lambdas or local functions run on their own graph, which this version does not analyse.
        private static bool InBody(IOperation op)
        {
            for (var p = op.Parent; p is not null; p = p.Parent)
            {
                if (p is IAnonymousFunctionOperation or ILocalFunctionOperation)
                    return false;
            }
            return true;
        }

        public void Report(CompilationAnalysisContext end)
        {
            var covered = new Dictionary<IMethodSymbol, bool>(SymbolEqualityComparer.Default);
            foreach (var entry in _unguarded)
            {
                if (Covered(entry.Key, covered))
                    continue;
                string hint = ClosedWorld(entry.Key)
                    ? (_callers.ContainsKey(entry.Key) ? " (a caller does not hold one either)" : "")
                    : " (callable from outside this assembly, so it cannot rely on its callers)";
                foreach (var (location, callee) in entry.Value.Uses)
                    end.ReportDiagnostic(Diagnostic.Create(NoMmReferenceDescriptor, location, $"{entry.Key.ContainingType.Name}.{entry.Key.Name}", callee, hint));
            }
        }

        // Whether every path into 'method' from this compilation holds an mm reference at the call: a method only this
        // assembly can call, never converted to a delegate, called at least once, and at every call site either the
        // caller holds a reference or the caller is covered itself. Cycles count as not covered.
        private bool Covered(IMethodSymbol method, Dictionary<IMethodSymbol, bool> memo)
        {
            if (memo.TryGetValue(method, out bool known))
                return known;
            memo[method] = false;
            bool result = ClosedWorld(method) && !_referenced.ContainsKey(method)
                && _callers.TryGetValue(method, out var sites) && !sites.IsEmpty
                && sites.All(s => s.Held || Covered(s.Caller, memo));
            memo[method] = result;
            return result;
        }

        private static bool ClosedWorld(IMethodSymbol method)
        {
            if (method.MethodKind != MethodKind.Ordinary || method.IsVirtual || method.IsAbstract || method.IsOverride
                || !method.ExplicitInterfaceImplementations.IsEmpty || ImplementsInterface(method))
                return false;
            for (ISymbol? s = method; s is not null and not INamespaceSymbol; s = s.ContainingSymbol)
            {
                if (s.DeclaredAccessibility is Accessibility.Private or Accessibility.Internal or Accessibility.ProtectedAndInternal)
                    return true;
            }
            return false;
        }

        private static bool ImplementsInterface(IMethodSymbol method)
        {
            var type = method.ContainingType;
            foreach (var i in type.AllInterfaces)
            {
                foreach (var member in i.GetMembers(method.Name))
                {
                    if (SymbolEqualityComparer.Default.Equals(type.FindImplementationForInterfaceMember(member), method))
                        return true;
                }
            }
            return false;
        }

        private static bool IsMmOrNotifier(ITypeSymbol? type, Symbols symbols) =>
            type is not null && (SymbolEqualityComparer.Default.Equals(type, symbols.Mm) || SymbolEqualityComparer.Default.Equals(type, symbols.Notifier));

        private sealed class Unguarded(ImmutableArray<(Location Location, string Callee)> uses)
        {
            public ImmutableArray<(Location Location, string Callee)> Uses { get; } = uses;
        }
    }

    // Whether an mm reference taken by MmGetNotZero (on its success edge) and not put since is held on every path.
    private sealed class MmReferenceFlow(ControlFlowGraph cfg, Symbols symbols) : ForwardFlow<MmReferenceFlow.State>(cfg)
    {
        // Keyed by syntax: the graph's operations are not the instances of the method's operation tree.
        public Dictionary<SyntaxNode, bool> HeldAt { get; } = new();

        protected override State Entry => State.Free;

        protected override State Join(State a, State b) => a.Held && b.Held ? State.Taken : State.Free;

        protected override bool Same(State a, State b) => a.Held == b.Held;

        protected override State Transfer(IOperation operation, State state)
        {
            if (operation is not IInvocationOperation invocation)
                return state;
            if (Reporting && !invocation.IsImplicit)
                HeldAt[invocation.Syntax] = state.Held;
            return KnownSymbols.IsMethod(invocation.TargetMethod, symbols.MmPut) ? State.Free : state;
        }

        protected override State? Branch(IOperation condition, bool sense, State state)
        {
            var value = Values.Resolve(condition);
            switch (value)
            {
                case IUnaryOperation { OperatorKind: UnaryOperatorKind.Not } not:
                    return Branch(not.Operand, !sense, state);
                case IInvocationOperation invocation when KnownSymbols.IsMethod(invocation.TargetMethod, symbols.MmGetNotZero):
                    return sense ? State.Taken : state;
                case IBinaryOperation { OperatorKind: BinaryOperatorKind.Equals or BinaryOperatorKind.NotEquals } binary
                    when binary.RightOperand.ConstantValue is { HasValue: true, Value: bool b }:
                    return Branch(binary.LeftOperand, (binary.OperatorKind == BinaryOperatorKind.Equals) == (sense == b), state);
                case IIsPatternOperation { Pattern: IConstantPatternOperation { Value.ConstantValue: { HasValue: true, Value: bool p } } } isPattern:
                    return Branch(isPattern.Value, sense == p, state);
                default:
                    return state;
            }
        }

        public sealed class State
        {
            public static readonly State Free = new(false);
            public static readonly State Taken = new(true);

            private State(bool held) => Held = held;

            public bool Held { get; }
        }
    }

    private sealed class Symbols
    {
        public Symbols(Compilation compilation)
        {
            Mm = compilation.GetTypeByMetadataName("HmmEmu.Kernel.Vm.Mm");
            Notifier = compilation.GetTypeByMetadataName("HmmEmu.Kernel.Notifiers.MmuIntervalNotifier");
            HmmRange = compilation.GetTypeByMetadataName("HmmEmu.Kernel.Mirroring.HmmRange");
            MmGetNotZero = Method(Mm, "MmGetNotZero");
            MmPut = Method(Mm, "MmPut");
            Remove = Method(Notifier, "Remove");
            ReadBegin = Method(Notifier, "ReadBegin");
            RangeFault = Method(compilation.GetTypeByMetadataName("HmmEmu.Kernel.Mirroring.Hmm"), "RangeFault");
        }

        public INamedTypeSymbol? Mm { get; }

        public INamedTypeSymbol? Notifier { get; }

        public INamedTypeSymbol? HmmRange { get; }

        public IMethodSymbol? MmGetNotZero { get; }

        public IMethodSymbol? MmPut { get; }

        public IMethodSymbol? Remove { get; }

        public IMethodSymbol? ReadBegin { get; }

        public IMethodSymbol? RangeFault { get; }

        private static IMethodSymbol? Method(INamedTypeSymbol? type, string name) =>
            type?.GetMembers(name).OfType<IMethodSymbol>().FirstOrDefault(m => m.Parameters.IsEmpty || name == "RangeFault");
    }
}
