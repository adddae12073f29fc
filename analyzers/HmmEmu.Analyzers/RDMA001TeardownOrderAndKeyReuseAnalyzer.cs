using System;
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
/// RDMA001: in a teardown method (one that calls a <c>[DeviceKeyRevoke]</c> method), a release of something the device
/// may still reach through the memory key — the interval notifier (<c>MmuIntervalNotifier.Remove</c>), DMA mappings
/// (<c>[DmaUnmap]</c>), pages (<c>PhysicalMemory.PutPage</c>), device-visible memory such as the MTT
/// (<c>PciDev.FreeCoherent</c>) or the key itself (<c>[KeyRelease]</c>) — on a path where the key was not revoked on the
/// device and waited for before.
/// </summary>
/// <remarks>
/// Path-sensitive over the method's control-flow graph (<see cref="MustFlowAnalysis"/>). A <c>[DeviceKeyRevoke(Waits =
/// false)]</c> call only posts the revoke: a blocking wait (<c>[BlockingWait]</c>) after it completes it. On the edge of
/// a test that the key is absent (<c>if (Lkey != 0) Revoke(Lkey)</c>: its false edge; <c>mkey is null</c>) there is
/// nothing on the device to revoke. A helper of the same compilation counts as the releases it makes (transitively); its
/// calls are matched at compilation end, so in the IDE those show with full-solution analysis. A helper that revokes
/// itself is in order by itself (its own body is checked).
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class RDMA001TeardownOrderAndKeyReuseAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "RDMA001";

    /// <summary>The category of the RDMA rules.</summary>
    public const string Category = "HmmEmu.Rdma";

    private const string Title = "Teardown releases what the device may still use through the memory key";

    private const string Description =
        "Until the device has stopped using a memory key (DEREG_MR, mkey destroyed or invalidated, and the answer waited for), in-flight DMA and new page faults may still translate through it: " +
        "removing the interval notifier lets the CPU change the pages unseen, unmapping or putting the pages hands them back while the device writes them, freeing the MTT lets the device walk freed memory, " +
        "and a key returned to the pool may be given to another registration while stale work still carries it (mlx5 e6fb246ccafb; \"another allocation could get the same mkey #\"; mlx4 FMR rkey recycling). " +
        "Revoke and wait first, then release. See docs/rules/RDMA001.md.";

    private const string MessageFormat =
        "'{0}' {1} on a path where the memory key was not revoked on the device and waited for ([DeviceKeyRevoke]): the device may still use it; revoke the key first";

    internal static readonly DiagnosticDescriptor Descriptor = new(
        Id, Title, MessageFormat, Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description: Description);

    internal static readonly DiagnosticDescriptor CompilationEndDescriptor = new(
        Id, Title, MessageFormat, Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description: Description,
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
            var symbols = new TeardownSymbols(start.Compilation);
            if (!symbols.Present)
                return;
            var summaries = new Summaries(start.Compilation.Assembly);
            start.RegisterOperationBlockAction(block => AnalyzeMethod(block, symbols, summaries));
            start.RegisterCompilationEndAction(end => summaries.ReportAtEnd(end));
        });
    }

    private static void AnalyzeMethod(OperationBlockAnalysisContext block, TeardownSymbols symbols, Summaries summaries)
    {
        if (block.OwningSymbol is not IMethodSymbol method)
            return;
        bool revokes = false;
        var releases = Release.None;
        var callees = new List<IMethodSymbol>();
        foreach (var root in block.OperationBlocks)
        {
            foreach (var op in root.DescendantsAndSelf())
            {
                if (op is not IInvocationOperation invocation || InsideLambda(op, root))
                    continue;
                var target = invocation.TargetMethod;
                revokes |= symbols.RevokeOf(target) != Revoke.None;
                releases |= symbols.ReleaseOf(target);
                if (summaries.IsSource(target))
                    callees.Add(Original(target));
            }
        }
        summaries.Record(Original(method), revokes, releases, callees);
        if (!revokes)
            return;
        var cfg = MethodGraphs.Body(block);
        if (cfg is null)
            return;
        MustFlowAnalysis.Analyze(cfg, new Rule(block, symbols, summaries, cfg), block.CancellationToken);
    }

    private static bool InsideLambda(IOperation op, IOperation root)
    {
        for (var p = op.Parent; p is not null && !ReferenceEquals(p, root); p = p.Parent)
        {
            if (p is IAnonymousFunctionOperation or ILocalFunctionOperation)
                return true;
        }
        return false;
    }

    private static IMethodSymbol Original(IMethodSymbol method) => (method.ReducedFrom ?? method).OriginalDefinition;

    /// <summary>Words for a set of releases, as the message's "{1}".</summary>
    internal static string DescribeRelease(Release release)
    {
        var parts = new List<string>();
        if ((release & Release.Notifier) != 0)
            parts.Add("removes the interval notifier");
        if ((release & Release.DmaUnmap) != 0)
            parts.Add("drops DMA mappings");
        if ((release & Release.Pages) != 0)
            parts.Add("releases pages");
        if ((release & Release.DeviceMemory) != 0)
            parts.Add("frees memory the device reads");
        if ((release & Release.Key) != 0)
            parts.Add("returns the key to the free pool");
        return parts.Count switch
        {
            0 => "releases resources",
            1 => parts[0],
            _ => string.Join(", ", parts.GetRange(0, parts.Count - 1)) + " and " + parts[parts.Count - 1],
        };
    }

    /// <summary>What a call releases that the device may reach through a memory key.</summary>
    [Flags]
    internal enum Release : byte
    {
        None = 0,
        Notifier = 1,
        DmaUnmap = 2,
        Pages = 4,
        DeviceMemory = 8,
        Key = 16,
    }

    /// <summary>How a call revokes a memory key.</summary>
    internal enum Revoke : byte
    {
        None,

        /// <summary>Revokes and waits for the device.</summary>
        Waited,

        /// <summary>Only posts the revoke; a blocking wait completes it.</summary>
        Posted,
    }

    /// <summary>The members RDMA001 recognises, resolved once per compilation.</summary>
    private sealed class TeardownSymbols
    {
        private readonly KnownSymbols _known;
        private readonly INamedTypeSymbol? _revoke;
        private readonly INamedTypeSymbol? _keyRelease;
        private readonly IMethodSymbol? _notifierRemove;
        private readonly IMethodSymbol? _putPage;
        private readonly IMethodSymbol? _freeCoherent;
        private readonly ConcurrentDictionary<IMethodSymbol, (Revoke, Release)> _cache = new(SymbolEqualityComparer.Default);

        public TeardownSymbols(Compilation compilation)
        {
            _known = KnownSymbols.Create(compilation);
            _revoke = compilation.GetTypeByMetadataName("HmmEmu.Annotations.DeviceKeyRevokeAttribute");
            _keyRelease = compilation.GetTypeByMetadataName("HmmEmu.Annotations.KeyReleaseAttribute");
            _notifierRemove = Method(compilation, "HmmEmu.Kernel.Notifiers.MmuIntervalNotifier", "Remove");
            _putPage = Method(compilation, "HmmEmu.Kernel.Memory.PhysicalMemory", "PutPage");
            _freeCoherent = Method(compilation, "HmmEmu.Kernel.Bus.PciDev", "FreeCoherent");
        }

        /// <summary>Whether a teardown can be recognised at all (the revoke attribute is referenced).</summary>
        public bool Present => _revoke is not null;

        public KnownSymbols Known => _known;

        public Revoke RevokeOf(IMethodSymbol method) => Get(method).Item1;

        public Release ReleaseOf(IMethodSymbol method) => Get(method).Item2;

        private (Revoke, Release) Get(IMethodSymbol method) => _cache.GetOrAdd(Original(method), Compute);

        private (Revoke, Release) Compute(IMethodSymbol method)
        {
            var revoke = Revoke.None;
            var release = Release.None;
            foreach (var a in method.GetAttributes())
            {
                if (Is(a.AttributeClass, _revoke))
                {
                    revoke = Revoke.Waited;
                    foreach (var named in a.NamedArguments)
                    {
                        if (named.Key == "Waits" && named.Value.Value is false)
                            revoke = Revoke.Posted;
                    }
                }
                else if (Is(a.AttributeClass, _keyRelease))
                {
                    release |= Release.Key;
                }
            }
            if ((_known.FactsOf(method).Device & DeviceEffect.Unmap) != 0)
                release |= Release.DmaUnmap;
            if (Is(method, _notifierRemove))
                release |= Release.Notifier;
            if (Is(method, _putPage))
                release |= Release.Pages;
            if (Is(method, _freeCoherent))
                release |= Release.DeviceMemory;
            return (revoke, release);
        }

        private static bool Is(ISymbol? a, ISymbol? b) => b is not null && SymbolEqualityComparer.Default.Equals(a, b);

        private static IMethodSymbol? Method(Compilation compilation, string type, string name)
        {
            foreach (var m in compilation.GetTypeByMetadataName(type)?.GetMembers(name) ?? ImmutableArray<ISymbol>.Empty)
            {
                if (m is IMethodSymbol method)
                    return method;
            }
            return null;
        }
    }

    /// <summary>
    /// Per-method facts of the compilation (revokes directly, releases directly, source methods called) and the helper
    /// calls made before a revoke, matched at compilation end once every helper's transitive releases are known.
    /// </summary>
    private sealed class Summaries
    {
        private readonly IAssemblySymbol _assembly;
        private readonly ConcurrentDictionary<IMethodSymbol, (bool Revokes, Release Releases, List<IMethodSymbol> Callees)> _methods = new(SymbolEqualityComparer.Default);
        private readonly ConcurrentQueue<(IMethodSymbol Callee, Location Location, string Name)> _pending = new();

        public Summaries(IAssemblySymbol assembly) => _assembly = assembly;

        public bool IsSource(IMethodSymbol method) =>
            SymbolEqualityComparer.Default.Equals(method.ContainingAssembly, _assembly) && !method.IsAbstract && method.DeclaringSyntaxReferences.Length > 0;

        public void Record(IMethodSymbol method, bool revokes, Release releases, List<IMethodSymbol> callees) =>
            _methods[method] = (revokes, releases, callees);

        public void HelperCalledBeforeRevoke(IMethodSymbol callee, Location location, string name) =>
            _pending.Enqueue((Original(callee), location, name));

        public void ReportAtEnd(CompilationAnalysisContext context)
        {
            var memo = new Dictionary<IMethodSymbol, (bool, Release)>(SymbolEqualityComparer.Default);
            foreach (var (callee, location, name) in _pending)
            {
                var (revokes, releases) = Transitive(callee, memo, new HashSet<IMethodSymbol>(SymbolEqualityComparer.Default), 0);
                if (!revokes && releases != Release.None)
                    context.ReportDiagnostic(Diagnostic.Create(CompilationEndDescriptor, location, name, DescribeRelease(releases) + " (in the helper)"));
            }
        }

        private (bool, Release) Transitive(IMethodSymbol method, Dictionary<IMethodSymbol, (bool, Release)> memo, HashSet<IMethodSymbol> visiting, int depth)
        {
            if (memo.TryGetValue(method, out var known))
                return known;
            if (!_methods.TryGetValue(method, out var direct) || depth > 16 || !visiting.Add(method))
                return (false, Release.None);
            bool revokes = direct.Revokes;
            var releases = direct.Releases;
            foreach (var callee in direct.Callees)
            {
                var (r, rel) = Transitive(callee, memo, visiting, depth + 1);
                revokes |= r;
                releases |= rel;
            }
            visiting.Remove(method);
            memo[method] = (revokes, releases);
            return (revokes, releases);
        }
    }

    /// <summary>The typestate: <see cref="Revoked"/> once the key is revoked and waited for on every path; <see cref="Posted"/> while only posted.</summary>
    private sealed class Rule : MustFlowRule
    {
        private static readonly object Revoked = "revoked";
        private static readonly object Posted = "posted";

        private readonly OperationBlockAnalysisContext _context;
        private readonly TeardownSymbols _symbols;
        private readonly Summaries _summaries;
        private readonly HashSet<ISymbol> _keys = new(SymbolEqualityComparer.Default);

        public Rule(OperationBlockAnalysisContext context, TeardownSymbols symbols, Summaries summaries, ControlFlowGraph cfg)
        {
            _context = context;
            _symbols = symbols;
            _summaries = summaries;
            CollectKeys(cfg);
        }

        public override ImmutableHashSet<object> Transfer(IOperation operation, ImmutableHashSet<object> state)
        {
            if (operation is not IInvocationOperation invocation)
                return state;
            switch (_symbols.RevokeOf(invocation.TargetMethod))
            {
                case Revoke.Waited:
                    return state.Add(Revoked).Remove(Posted);
                case Revoke.Posted:
                    return state.Contains(Revoked) ? state : state.Add(Posted);
            }
            if (state.Contains(Posted) && _symbols.Known.FactsOf(invocation.TargetMethod).Blocking == BlockingKind.BlockingWait)
                return state.Add(Revoked).Remove(Posted);
            return state;
        }

        public override ImmutableHashSet<object>? Condition(IOperation value, bool sense, ImmutableHashSet<object> state)
        {
            switch (value)
            {
                case IIsNullOperation isNull when sense && IsKey(isNull.Operand):
                    return state.Add(Revoked);
                case IBinaryOperation { OperatorKind: BinaryOperatorKind.Equals or BinaryOperatorKind.NotEquals } binary:
                    bool equalEdge = (binary.OperatorKind == BinaryOperatorKind.Equals) == sense;
                    return equalEdge && IsKeyAbsentTest(binary.LeftOperand, binary.RightOperand) ? state.Add(Revoked) : state;
                case IIsPatternOperation { Pattern: IConstantPatternOperation constant } isPattern:
                    return sense && IsKeyAbsentTest(isPattern.Value, constant.Value) ? state.Add(Revoked) : state;
                case IIsPatternOperation { Pattern: INegatedPatternOperation { Pattern: IConstantPatternOperation negated } } isNot:
                    return !sense && IsKeyAbsentTest(isNot.Value, negated.Value) ? state.Add(Revoked) : state;
                default:
                    return state;
            }
        }

        public override void Observe(IOperation operation, ImmutableHashSet<object> before)
        {
            if (operation is not IInvocationOperation invocation || before.Contains(Revoked))
                return;
            var target = invocation.TargetMethod;
            if (_symbols.RevokeOf(target) != Revoke.None)
                return;
            string name = $"{target.ContainingType?.Name}.{target.Name}";
            var release = _symbols.ReleaseOf(target);
            if (release != Release.None)
                _context.ReportDiagnostic(Diagnostic.Create(Descriptor, invocation.Syntax.GetLocation(), name, DescribeRelease(release)));
            else if (_summaries.IsSource(target))
                _summaries.HelperCalledBeforeRevoke(target, invocation.Syntax.GetLocation(), name);
        }

        // The symbols the revoke calls take their key from (Lkey in Revoke(new RnicKey(Lkey)), or the receiver of mkey.Destroy()).
        private void CollectKeys(ControlFlowGraph cfg)
        {
            foreach (var block in cfg.Blocks)
            {
                foreach (var root in block.Operations)
                    CollectKeys(root);
                if (block.BranchValue is not null)
                    CollectKeys(block.BranchValue);
            }
        }

        private void CollectKeys(IOperation root)
        {
            foreach (var op in root.DescendantsAndSelf())
            {
                if (op is not IInvocationOperation invocation || _symbols.RevokeOf(invocation.TargetMethod) == Revoke.None)
                    continue;
                if (invocation.Instance is not null and not IInstanceReferenceOperation)
                    AddKeys(invocation.Instance);
                foreach (var arg in invocation.Arguments)
                    AddKeys(arg.Value);
            }
        }

        private void AddKeys(IOperation value)
        {
            foreach (var op in value.DescendantsAndSelf())
            {
                switch (op)
                {
                    case ILocalReferenceOperation l:
                        _keys.Add(l.Local);
                        break;
                    case IParameterReferenceOperation p:
                        _keys.Add(p.Parameter);
                        break;
                    case IFieldReferenceOperation f:
                        _keys.Add(f.Field.OriginalDefinition);
                        break;
                    case IPropertyReferenceOperation p:
                        _keys.Add(p.Property.OriginalDefinition);
                        break;
                }
            }
        }

        private bool IsKey(IOperation operation) => Analysis.KeyOf(operation) is { } key && _keys.Contains(key);

        // One side is the key, the other the constant 0 or null: the test is "there is no key".
        private bool IsKeyAbsentTest(IOperation a, IOperation b) =>
            IsZeroOrNull(Analysis.Resolve(b)) && IsKey(a) || IsZeroOrNull(Analysis.Resolve(a)) && IsKey(b);

        private static bool IsZeroOrNull(IOperation operation) => operation.ConstantValue is { HasValue: true } c && c.Value switch
        {
            null => true,
            int i => i == 0,
            uint u => u == 0,
            long l => l == 0,
            ulong ul => ul == 0,
            _ => false,
        };
    }
}
