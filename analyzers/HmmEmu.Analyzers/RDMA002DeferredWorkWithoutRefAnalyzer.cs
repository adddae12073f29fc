using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers;

/// <summary>
/// RDMA002: deferred work (a <c>WorkItem</c>, <c>Task.Run</c>, a thread, a timer, <c>Scheduler.Spawn</c>, anything
/// marked <c>[DeferredWork]</c>) whose lambda, method group or state argument captures a reference-counted object (a
/// type with a <c>[RefGet]</c> instance method: an MR, a QP, the <c>Mm</c>) on a path where no reference was taken on
/// it before; or whose lambda runs under a reference the caller took but never drops one itself.
/// </summary>
/// <remarks>
/// "Taken on every path before" is a must-dataflow over the method's control-flow graph: <c>x.Get()</c> adds <c>x</c>,
/// <c>if (!x.TryGet()) return;</c> adds it on the success edge, <c>x.Put()</c> removes it. Captures are the locals,
/// parameters and <c>this</c> the lambda uses from outside itself; a field the work reads when it runs is a lookup
/// at run time, not a capture, and is not checked.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class RDMA002DeferredWorkWithoutRefAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "RDMA002";

    private const string Title = "Deferred work captures a reference-counted object without holding a reference";

    private const string Description =
        "Work queued for later runs after the caller returned: the object it captured may have been destroyed by then (its last reference dropped, an MR deregistered, a QP destroyed) unless the work holds its own reference. " +
        "Take a reference before queueing and drop it at the end of the work, in a finally (rxe d94671632572 \"a reference to the qp must be taken when the task is scheduled and held until it finishes running\"; mlx5 \"Use SRCU properly in ODP prefetch\"; amdkfd a29e067bd389 takes the mm reference when queueing). See docs/rules/RDMA002.md.";

    internal static readonly DiagnosticDescriptor NoReferenceDescriptor = new(
        Id,
        Title,
        messageFormat: "The deferred work captures '{0}' ({1} is reference-counted) on a path where no reference was taken on it before queueing: take one ([RefGet]) before queueing and drop it ([RefPut]) when the work ends",
        RDMA001TeardownOrderAndKeyReuseAnalyzer.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    internal static readonly DiagnosticDescriptor NoPutDescriptor = new(
        Id,
        Title,
        messageFormat: "The deferred work uses '{0}' under a reference it never drops: hand the reference to the work and drop it there ([RefPut], in a finally), not in the caller",
        RDMA001TeardownOrderAndKeyReuseAnalyzer.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(NoReferenceDescriptor, NoPutDescriptor);

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(start =>
        {
            var symbols = new RefSymbols(start.Compilation);
            if (!symbols.Present)
                return;
            start.RegisterOperationBlockAction(block => AnalyzeMethod(block, symbols));
        });
    }

    private static void AnalyzeMethod(OperationBlockAnalysisContext block, RefSymbols symbols)
    {
        if (!HasSink(block, symbols))
            return;
        var body = MethodGraphs.Body(block);
        if (body is null)
            return;
        MustFlowAnalysis.Analyze(body, new Rule(block, symbols), block.CancellationToken);
        foreach (var nested in MethodGraphs.Nested(body))
            MustFlowAnalysis.Analyze(nested, new Rule(block, symbols), block.CancellationToken);
    }

    private static bool HasSink(in OperationBlockAnalysisContext block, RefSymbols symbols)
    {
        foreach (var root in block.OperationBlocks)
        {
            foreach (var op in root.DescendantsAndSelf())
            {
                if (op is IInvocationOperation invocation && symbols.IsSink(invocation.TargetMethod)
                    || op is IObjectCreationOperation { Constructor: { } ctor } && symbols.IsSink(ctor))
                    return true;
            }
        }
        return false;
    }

    /// <summary>What a call does to a reference count.</summary>
    private enum RefEffect : byte
    {
        None,
        Get,
        GetIfTrue,
        Put,
    }

    /// <summary>The attributes and BCL members RDMA002 recognises, resolved once per compilation.</summary>
    private sealed class RefSymbols
    {
        private readonly INamedTypeSymbol? _refGet;
        private readonly INamedTypeSymbol? _refPut;
        private readonly INamedTypeSymbol? _deferredWork;
        private readonly INamedTypeSymbol? _task;
        private readonly INamedTypeSymbol? _taskOfT;
        private readonly INamedTypeSymbol? _taskFactory;
        private readonly INamedTypeSymbol? _threadPool;
        private readonly INamedTypeSymbol? _thread;
        private readonly INamedTypeSymbol? _timer;
        private readonly INamedTypeSymbol? _scheduler;
        private readonly ConcurrentDictionary<ITypeSymbol, bool> _refCounted = new(SymbolEqualityComparer.Default);

        public RefSymbols(Compilation compilation)
        {
            INamedTypeSymbol? T(string name) => compilation.GetTypeByMetadataName(name);
            _refGet = T("HmmEmu.Annotations.RefGetAttribute");
            _refPut = T("HmmEmu.Annotations.RefPutAttribute");
            _deferredWork = T("HmmEmu.Annotations.DeferredWorkAttribute");
            _task = T("System.Threading.Tasks.Task");
            _taskOfT = T("System.Threading.Tasks.Task`1");
            _taskFactory = T("System.Threading.Tasks.TaskFactory");
            _threadPool = T("System.Threading.ThreadPool");
            _thread = T("System.Threading.Thread");
            _timer = T("System.Threading.Timer");
            _scheduler = T("HmmEmu.Simulation.Scheduler");
        }

        /// <summary>Whether reference-counted types can be recognised at all.</summary>
        public bool Present => _refGet is not null;

        /// <summary>Whether the delegate arguments of <paramref name="method"/> run later on another thread.</summary>
        public bool IsSink(IMethodSymbol method)
        {
            method = (method.ReducedFrom ?? method).OriginalDefinition;
            if (_deferredWork is not null && Has(method, _deferredWork))
                return true;
            var type = method.ContainingType?.OriginalDefinition;
            if (type is null)
                return false;
            if (method.MethodKind == MethodKind.Constructor)
                return Is(type, _thread) || Is(type, _timer) || Is(type, _task) || Is(type, _taskOfT);
            return method.Name switch
            {
                "Run" => Is(type, _task),
                "ContinueWith" => Is(type, _task) || Is(type, _taskOfT),
                "StartNew" => Is(type, _taskFactory),
                "QueueUserWorkItem" or "UnsafeQueueUserWorkItem" => Is(type, _threadPool),
                "Spawn" => InheritsFrom(type, _scheduler),
                _ => false,
            };
        }

        public RefEffect EffectOf(IMethodSymbol method)
        {
            if (method.IsStatic)
                return RefEffect.None;
            method = (method.ReducedFrom ?? method).OriginalDefinition;
            if (_refGet is not null && Has(method, _refGet))
                return method.ReturnType.SpecialType == SpecialType.System_Boolean ? RefEffect.GetIfTrue : RefEffect.Get;
            if (_refPut is not null && Has(method, _refPut))
                return RefEffect.Put;
            return RefEffect.None;
        }

        /// <summary>Whether <paramref name="type"/>, a base type or an interface of it has a <c>[RefGet]</c> instance method.</summary>
        public bool IsRefCounted(ITypeSymbol? type)
        {
            if (type is null || _refGet is null || type.SpecialType != SpecialType.None || type.TypeKind == TypeKind.TypeParameter)
                return false;
            return _refCounted.GetOrAdd(type.OriginalDefinition, t =>
            {
                for (var cur = t; cur is not null; cur = cur.BaseType)
                {
                    if (DeclaresGet(cur))
                        return true;
                }
                foreach (var i in t.AllInterfaces)
                {
                    if (DeclaresGet(i))
                        return true;
                }
                return false;
            });
        }

        private bool DeclaresGet(ITypeSymbol type)
        {
            foreach (var m in type.GetMembers())
            {
                if (m is IMethodSymbol { IsStatic: false } method && Has(method, _refGet!))
                    return true;
            }
            return false;
        }

        private static bool Has(ISymbol symbol, INamedTypeSymbol attribute)
        {
            foreach (var a in symbol.GetAttributes())
            {
                if (SymbolEqualityComparer.Default.Equals(a.AttributeClass, attribute))
                    return true;
            }
            return false;
        }

        private static bool Is(ITypeSymbol a, INamedTypeSymbol? b) => b is not null && SymbolEqualityComparer.Default.Equals(a, b);

        private static bool InheritsFrom(INamedTypeSymbol type, INamedTypeSymbol? baseType)
        {
            for (var t = type; t is not null; t = t.BaseType)
            {
                if (Is(t, baseType))
                    return true;
            }
            return false;
        }
    }

    /// <summary>The must-state is the set of objects (local, parameter, or <c>this</c> as its type) a reference is held on.</summary>
    private sealed class Rule : MustFlowRule
    {
        private readonly OperationBlockAnalysisContext _context;
        private readonly RefSymbols _symbols;

        public Rule(OperationBlockAnalysisContext context, RefSymbols symbols)
        {
            _context = context;
            _symbols = symbols;
        }

        public override ImmutableHashSet<object> Transfer(IOperation operation, ImmutableHashSet<object> state)
        {
            if (operation is not IInvocationOperation invocation)
                return state;
            var effect = _symbols.EffectOf(invocation.TargetMethod);
            if (effect is RefEffect.None or RefEffect.GetIfTrue || Analysis.KeyOf(invocation.Instance) is not { } key)
                return state;
            return effect == RefEffect.Get ? state.Add(key) : state.Remove(key);
        }

        public override ImmutableHashSet<object>? Condition(IOperation value, bool sense, ImmutableHashSet<object> state)
        {
            if (sense && value is IInvocationOperation invocation && _symbols.EffectOf(invocation.TargetMethod) == RefEffect.GetIfTrue
                && Analysis.KeyOf(invocation.Instance) is { } key)
                return state.Add(key);
            return state;
        }

        public override void Observe(IOperation operation, ImmutableHashSet<object> before)
        {
            var (target, arguments) = operation switch
            {
                IInvocationOperation i => (i.TargetMethod, i.Arguments),
                IObjectCreationOperation { Constructor: { } c } o => (c, o.Arguments),
                _ => (null, ImmutableArray<IArgumentOperation>.Empty),
            };
            if (target is null || !_symbols.IsSink(target))
                return;
            foreach (var arg in arguments)
            {
                var value = Analysis.Resolve(arg.Value);
                switch (value)
                {
                    case IDelegateCreationOperation { Target: IFlowAnonymousFunctionOperation lambda }:
                        CheckLambda(lambda, before);
                        break;
                    case IFlowAnonymousFunctionOperation lambda:
                        CheckLambda(lambda, before);
                        break;
                    case IDelegateCreationOperation { Target: IMethodReferenceOperation { Instance: { } receiver } } methodGroup:
                        CheckValue(receiver, methodGroup.Syntax, before);
                        break;
                    default:
                        if (arg.Value.Type is { } type && type.TypeKind != TypeKind.Delegate)
                            CheckValue(value, arg.Syntax, before);
                        break;
                }
            }
        }

        // A method-group receiver or a state argument: the object itself is handed to the work.
        private void CheckValue(IOperation value, SyntaxNode syntax, ImmutableHashSet<object> before)
        {
            if (!_symbols.IsRefCounted(value.Type) || Analysis.KeyOf(value) is not { } key || key is IFieldSymbol or IPropertySymbol)
                return;
            if (!before.Contains(key))
                _context.ReportDiagnostic(Diagnostic.Create(NoReferenceDescriptor, syntax.GetLocation(), Name(key), value.Type!.Name));
        }

        private void CheckLambda(IFlowAnonymousFunctionOperation lambda, ImmutableHashSet<object> before)
        {
            var graph = Analysis.Graph.GetAnonymousFunctionControlFlowGraph(lambda);
            var graphs = new List<ControlFlowGraph> { graph };
            graphs.AddRange(MethodGraphs.Nested(graph));
            var inner = new HashSet<ISymbol>(SymbolEqualityComparer.Default) { lambda.Symbol };
            foreach (var g in graphs)
            {
                foreach (var block in g.Blocks)
                {
                    foreach (var op in Operations(block))
                    {
                        if (op is IFlowAnonymousFunctionOperation nested)
                            inner.Add(nested.Symbol);
                    }
                }
                foreach (var local in g.LocalFunctions)
                    inner.Add(local);
            }
            var captured = new Dictionary<ISymbol, ITypeSymbol>(SymbolEqualityComparer.Default);
            var put = new HashSet<ISymbol>(SymbolEqualityComparer.Default);
            foreach (var g in graphs)
            {
                foreach (var block in g.Blocks)
                {
                    foreach (var op in Operations(block))
                    {
                        switch (op)
                        {
                            case ILocalReferenceOperation l when !inner.Contains(l.Local.ContainingSymbol):
                                captured[l.Local] = l.Local.Type;
                                break;
                            case IParameterReferenceOperation p when !inner.Contains(p.Parameter.ContainingSymbol):
                                captured[p.Parameter] = p.Parameter.Type;
                                break;
                            case IInstanceReferenceOperation { ReferenceKind: InstanceReferenceKind.ContainingTypeInstance } i when i.Type is not null:
                                captured[i.Type] = i.Type;
                                break;
                            case IInvocationOperation invocation when _symbols.EffectOf(invocation.TargetMethod) == RefEffect.Put:
                                if (ReceiverKey(invocation.Instance, g) is { } putKey)
                                    put.Add(putKey);
                                break;
                        }
                    }
                }
            }
            foreach (var kv in captured)
            {
                if (!_symbols.IsRefCounted(kv.Value))
                    continue;
                if (!before.Contains(kv.Key))
                    _context.ReportDiagnostic(Diagnostic.Create(NoReferenceDescriptor, lambda.Syntax.GetLocation(), Name(kv.Key), kv.Value.Name));
                else if (!put.Contains(kv.Key))
                    _context.ReportDiagnostic(Diagnostic.Create(NoPutDescriptor, lambda.Syntax.GetLocation(), Name(kv.Key)));
            }
        }

        private static IEnumerable<IOperation> Operations(BasicBlock block)
        {
            foreach (var root in block.Operations)
            {
                foreach (var op in root.DescendantsAndSelf())
                    yield return op;
            }
            if (block.BranchValue is not null)
            {
                foreach (var op in block.BranchValue.DescendantsAndSelf())
                    yield return op;
            }
        }

        // The receiver of a call inside the lambda's graph (through its own flow captures, as 'mr?.Put()' lowers).
        private static ISymbol? ReceiverKey(IOperation? receiver, ControlFlowGraph graph)
        {
            for (int depth = 0; depth < 8 && receiver is not null; depth++)
            {
                switch (receiver)
                {
                    case IConversionOperation c:
                        receiver = c.Operand;
                        continue;
                    case IFlowCaptureReferenceOperation r:
                        receiver = CaptureValue(graph, r.Id);
                        continue;
                    case ILocalReferenceOperation l:
                        return l.Local;
                    case IParameterReferenceOperation p:
                        return p.Parameter;
                    case IInstanceReferenceOperation i:
                        return i.Type;
                    default:
                        return null;
                }
            }
            return null;
        }

        private static IOperation? CaptureValue(ControlFlowGraph graph, CaptureId id)
        {
            foreach (var block in graph.Blocks)
            {
                foreach (var op in Operations(block))
                {
                    if (op is IFlowCaptureOperation capture && capture.Id.Equals(id))
                        return capture.Value;
                }
            }
            return null;
        }

        private static string Name(ISymbol key) => key is ITypeSymbol ? "this" : key.Name;
    }
}
