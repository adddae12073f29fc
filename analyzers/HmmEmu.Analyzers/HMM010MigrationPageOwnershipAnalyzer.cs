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
/// HMM010: ownership of migration destination pages, path by path over the method's control-flow graph. A page
/// allocated into a local (<c>PhysicalMemory.AllocPage</c>/<c>AllocContiguous</c>, or a driver allocator named
/// <c>Alloc*</c>/<c>TryAlloc*</c> with an <c>out ulong</c>) is owned on the allocator's success edge. (a) It leaks if a
/// path returns, or allocates into the same local again, while it is neither installed in a Dst entry nor freed
/// (<c>PutPage</c>), unless the local escapes (stored, returned, captured, used in arithmetic, or given to a driver
/// method whose name says it keeps or releases it: Free, Put, Release, Add, Store, Map...).
/// (b) Freeing it twice, freeing it after the migration took it (<c>VmaPages</c>/<c>VmaFinalize</c>/<c>Pages</c>/
/// <c>Complete</c>), or freeing it while Dst still names it and then handing Dst to the kernel (or returning) is a double
/// free. (c) Storing a page into a Dst entry in a method that reads source entries, on a path where no test of
/// <c>MigratePfn.Migrate</c> on a source entry answered "set", migrates an entry the kernel did not select.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM010MigrationPageOwnershipAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM010";

    private const string Title = "Migration destination page leaked, freed twice, or installed for an unselected source";

    private const string Description =
        "A migrate_vma destination page belongs to the driver until it is in dst and migrate_vma_pages/finalize took it; then finalize drops it. " +
        "A page dropped on an error path without being freed leaks device memory; a page freed by the driver and again by finalize (or freed twice) corrupts the " +
        "allocator (NVIDIA open-gpu-kernel-modules PR #557, kfd \"recorded VRAM pages < migration pages\"). Only src entries with MIGRATE_PFN_MIGRATE may be " +
        "migrated (Documentation/mm/hmm.rst). See docs/rules/HMM010.md.";

    internal static readonly DiagnosticDescriptor LeakDescriptor = new(
        Id,
        Title,
        messageFormat: "The page allocated into '{0}' leaks on a path that {1} without installing it in Dst or freeing it (UnlockPage + PutPage)",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    internal static readonly DiagnosticDescriptor DoubleFreeDescriptor = new(
        Id,
        Title,
        messageFormat: "'{0}' may be freed twice: {1}",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    internal static readonly DiagnosticDescriptor UncheckedSourceDescriptor = new(
        Id,
        Title,
        messageFormat: "A destination page is stored into Dst on a path that did not test the source entry's MigratePfn.Migrate flag: only selected entries may be migrated; skip the entry unless (src & MigratePfn.Migrate) != 0",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(LeakDescriptor, DoubleFreeDescriptor, UncheckedSourceDescriptor);

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(start =>
        {
            var symbols = new Symbols(start.Compilation);
            if (symbols.MigratePfn is null || symbols.Memory is null)
                return;
            start.RegisterOperationBlockAction(block => AnalyzeMethod(block, symbols));
        });
    }

    private static void AnalyzeMethod(OperationBlockAnalysisContext block, Symbols symbols)
    {
        if (block.OwningSymbol is not IMethodSymbol)
            return;
        bool relevant = false;
        foreach (var root in block.OperationBlocks)
        {
            foreach (var op in root.DescendantsAndSelf())
            {
                if (op is IInvocationOperation invocation && (symbols.IsAlloc(invocation, out _) || symbols.IsFree(invocation))
                    || op is ISimpleAssignmentOperation { Target: IArrayElementReferenceOperation target } store && symbols.IsDstStore(target, store.Value))
                {
                    relevant = true;
                    break;
                }
            }
        }
        if (!relevant)
            return;
        var cfg = MethodGraphs.Body(block);
        if (cfg is null)
            return;
        var flow = new OwnershipFlow(cfg, symbols, block);
        flow.Run(block.CancellationToken);
    }

    [System.Flags]
    private enum Own : byte
    {
        None = 1,
        Owned = 2,        // allocated, the driver's
        Installed = 4,    // named by a Dst entry, not yet taken by the kernel
        Freed = 8,
        FreedInDst = 16,  // freed while a Dst entry still names it
        Kernel = 32,      // taken by migrate pages/finalize: finalize drops it
    }

    private sealed class State
    {
        public static readonly State Empty = new(false, ImmutableDictionary.Create<ILocalSymbol, Own>(SymbolEqualityComparer.Default));

        public State(bool tested, ImmutableDictionary<ILocalSymbol, Own> pages)
        {
            Tested = tested;
            Pages = pages;
        }

        // A source entry's MIGRATE flag was tested and found set on every path to here.
        public bool Tested { get; }

        // What each tracked page local may be here (absent: None).
        public ImmutableDictionary<ILocalSymbol, Own> Pages { get; }

        public Own Of(ILocalSymbol local) => Pages.TryGetValue(local, out var o) ? o : Own.None;

        public State With(ILocalSymbol local, Own own) => new(Tested, own == Own.None ? Pages.Remove(local) : Pages.SetItem(local, own));

        public State WithTested(bool tested) => tested == Tested ? this : new(tested, Pages);

        public State Map(System.Func<Own, Own> f)
        {
            var b = Pages.ToBuilder();
            foreach (var kv in Pages)
            {
                var o = f(kv.Value);
                if (o == Own.None)
                    b.Remove(kv.Key);
                else
                    b[kv.Key] = o;
            }
            return new(Tested, b.ToImmutable());
        }

        public static State Join(State a, State b)
        {
            var pages = a.Pages.ToBuilder();
            foreach (var kv in b.Pages)
                pages[kv.Key] = a.Of(kv.Key) | kv.Value;
            foreach (var kv in a.Pages)
            {
                if (!b.Pages.ContainsKey(kv.Key))
                    pages[kv.Key] = kv.Value | Own.None;
            }
            return new(a.Tested && b.Tested, pages.ToImmutable());
        }

        public bool Same(State other) =>
            Tested == other.Tested && Pages.Count == other.Pages.Count && Pages.All(kv => other.Pages.TryGetValue(kv.Key, out var o) && o == kv.Value);
    }

    private sealed class OwnershipFlow : ForwardFlow<State>
    {
        private readonly Symbols _symbols;
        private readonly OperationBlockAnalysisContext _context;
        private readonly Dictionary<ILocalSymbol, IInvocationOperation> _allocSite = new(SymbolEqualityComparer.Default);
        private readonly Dictionary<ILocalSymbol, IInvocationOperation> _freeSite = new(SymbolEqualityComparer.Default);
        private readonly Dictionary<ILocalSymbol, List<ILocalSymbol>> _resultHolders = new(SymbolEqualityComparer.Default);
        private readonly HashSet<ILocalSymbol> _tracked = new(SymbolEqualityComparer.Default);
        private readonly HashSet<ILocalSymbol> _escaped = new(SymbolEqualityComparer.Default);
        private readonly HashSet<Location> _reported = new();
        private readonly bool _readsSources;

        public OwnershipFlow(ControlFlowGraph cfg, Symbols symbols, OperationBlockAnalysisContext context)
            : base(cfg)
        {
            _symbols = symbols;
            _context = context;
            foreach (var root in context.OperationBlocks)
            {
                foreach (var op in root.DescendantsAndSelf())
                {
                    if (op is IInvocationOperation invocation && symbols.IsAlloc(invocation, out var page) && page is not null)
                        _tracked.Add(page);
                    else if (op is IInvocationOperation toPfn && KnownSymbols.IsMethod(toPfn.TargetMethod, symbols.ToPfn)
                             || op is IArrayElementReferenceOperation element && symbols.IsMigrationArray(element.ArrayReference, "Src"))
                        _readsSources = true;
                }
            }
            foreach (var root in context.OperationBlocks)
            {
                foreach (var op in root.DescendantsAndSelf())
                {
                    if (op is ILocalReferenceOperation reference && _tracked.Contains(reference.Local) && !IsOwnershipNeutral(reference))
                        _escaped.Add(reference.Local);
                }
            }
        }

        protected override State Entry => State.Empty;

        protected override State Join(State a, State b) => State.Join(a, b);

        protected override bool Same(State a, State b) => a.Same(b);

        protected override State Transfer(IOperation operation, State state)
        {
            switch (operation)
            {
                case IInvocationOperation invocation:
                    return Invocation(invocation, state);
                case ISimpleAssignmentOperation store when StoredElement(store.Target) is { } target && IsDstStore(target, store.Value):
                    return DstStore(store, state);
                default:
                    return state;
            }
        }

        private State Invocation(IInvocationOperation invocation, State state)
        {
            if (_symbols.IsAlloc(invocation, out var page) && page is not null)
            {
                if (Reporting && (state.Of(page) & Own.Owned) != 0 && !_escaped.Contains(page) && _allocSite.TryGetValue(page, out var previous))
                    Report(LeakDescriptor, previous, page.Name, "reaches the next allocation into it");
                _allocSite[page] = invocation;
                if (Values.LocalHolding(invocation) is { } holder)
                {
                    if (!_resultHolders.TryGetValue(holder, out var pages))
                        _resultHolders[holder] = pages = new List<ILocalSymbol>();
                    if (!pages.Contains(page, SymbolEqualityComparer.Default))
                        pages.Add(page);
                }
                return state.With(page, Own.Owned);
            }
            if (_symbols.IsFree(invocation))
            {
                if (invocation.Arguments.Length != 1 || Strip(invocation.Arguments[0].Value) is not ILocalReferenceOperation freed || !_tracked.Contains(freed.Local))
                    return state;
                var own = state.Of(freed.Local);
                if (Reporting)
                {
                    if ((own & (Own.Freed | Own.FreedInDst)) != 0)
                        Report(DoubleFreeDescriptor, invocation, freed.Local.Name, "a path reaching this PutPage already freed it");
                    else if ((own & Own.Kernel) != 0)
                        Report(DoubleFreeDescriptor, invocation, freed.Local.Name, "the migration already took it (migrate pages/finalize drops it), and this PutPage drops it again");
                }
                _freeSite[freed.Local] = invocation;
                return state.With(freed.Local, (own & (Own.Installed | Own.FreedInDst)) != 0 ? Own.FreedInDst : Own.Freed);
            }
            if (_symbols.IsHandoff(invocation))
            {
                if (Reporting)
                    ReportFreedInDst(state, "is handed to the kernel here, which drops it again");
                return state.Map(o => (o & (Own.Installed | Own.Kernel)) != 0 ? (o & ~(Own.Installed | Own.FreedInDst)) | Own.Kernel : o);
            }
            return state;
        }

        private State DstStore(ISimpleAssignmentOperation store, State state)
        {
            if (store.Value.ConstantValue is { HasValue: true, Value: { } zero } && System.Convert.ToUInt64(zero, System.Globalization.CultureInfo.InvariantCulture) == 0)
            {
                // The entry is taken back: the page is the driver's again (or stays freed).
                return state.Map(o => (o & Own.Installed) != 0 ? (o & ~Own.Installed) | Own.Owned
                                    : (o & Own.FreedInDst) != 0 ? (o & ~Own.FreedInDst) | Own.Freed : o);
            }
            if (Reporting && _readsSources && !state.Tested)
                Report(UncheckedSourceDescriptor, store, null, null);
            foreach (var op in Values.Expand(store.Value))
            {
                if (op is IInvocationOperation from && KnownSymbols.IsMethod(from.TargetMethod, _symbols.From)
                    && from.Arguments.Length == 1 && Strip(from.Arguments[0].Value) is ILocalReferenceOperation installed && _tracked.Contains(installed.Local))
                {
                    var own = state.Of(installed.Local);
                    state = state.With(installed.Local, (own & ~Own.Owned) | ((own & Own.Owned) != 0 ? Own.Installed : 0));
                }
            }
            return state;
        }

        protected override State? Branch(IOperation condition, bool sense, State state)
        {
            var value = Strip(condition);
            if (value is IFlowCaptureReferenceOperation or ILocalReferenceOperation)
            {
                var resolved = Values.Resolve(value);
                if (!ReferenceEquals(resolved, value) && resolved.Type?.SpecialType == SpecialType.System_Boolean)
                    return Branch(resolved, sense, state);
            }
            switch (value)
            {
                case IUnaryOperation { OperatorKind: UnaryOperatorKind.Not } not:
                    return Branch(not.Operand, !sense, state);
                case IInvocationOperation invocation when _symbols.IsAlloc(invocation, out var page) && page is not null
                                                       && invocation.TargetMethod.ReturnType.SpecialType == SpecialType.System_Boolean:
                    return sense ? state : state.With(page, Own.None);
                case IBinaryOperation { OperatorKind: BinaryOperatorKind.Equals or BinaryOperatorKind.NotEquals } binary:
                    return Comparison(binary.LeftOperand, binary.RightOperand, (binary.OperatorKind == BinaryOperatorKind.Equals) == sense, state);
                case IIsPatternOperation { Pattern: IConstantPatternOperation constant } isPattern:
                    return Comparison(isPattern.Value, constant.Value, sense, state);
                case IIsPatternOperation { Pattern: INegatedPatternOperation { Pattern: IConstantPatternOperation negated } } isNot:
                    return Comparison(isNot.Value, negated.Value, !sense, state);
                default:
                    return state;
            }
        }

        // 'equal' is whether the operands are equal on this edge.
        private State? Comparison(IOperation left, IOperation right, bool equal, State state)
        {
            left = Strip(left);
            right = Strip(right);
            if (right.ConstantValue is { HasValue: true, Value: bool rb } && left.Type?.SpecialType == SpecialType.System_Boolean)
                return Branch(left, equal == rb, state);
            // (e & MigratePfn.Migrate) != 0, == 0, == (Valid | Migrate).
            if (MigrateMask(left) is not null || MigrateMask(right) is not null)
            {
                var other = MigrateMask(left) is not null ? right : left;
                if (other.ConstantValue is { HasValue: true, Value: { } c })
                {
                    ulong k = System.Convert.ToUInt64(c, System.Globalization.CultureInfo.InvariantCulture);
                    bool set = k == 0 ? !equal : equal && (k & _symbols.MigrateBit) != 0;
                    return set ? state.WithTested(true) : state;
                }
                return state;
            }
            // An allocator's result compared with Errno.Ok: the page is not ours on the failure edge.
            var ok = IsOk(right) ? left : IsOk(left) ? right : null;
            if (ok is null)
                return state;
            foreach (var page in AllocResultPages(ok))
                state = equal ? state : state.With(page, Own.None);
            return state;
        }

        // The array element an assignment stores into; the graph captures it first when the value branches.
        private IArrayElementReferenceOperation? StoredElement(IOperation target) =>
            target is IFlowCaptureReferenceOperation ? Values.Resolve(target) as IArrayElementReferenceOperation : target as IArrayElementReferenceOperation;

        // IsDstStore on the graph's operations: the array and the value may be flow captures.
        private bool IsDstStore(IArrayElementReferenceOperation target, IOperation value) =>
            _symbols.IsMigrationArray(Values.Resolve(target.ArrayReference), "Dst")
            || Values.Expand(value).Any(op => op is IInvocationOperation i && KnownSymbols.IsMethod(i.TargetMethod, _symbols.From));

        private IEnumerable<ILocalSymbol> AllocResultPages(IOperation result)
        {
            if (result is IInvocationOperation invocation && _symbols.IsAlloc(invocation, out var page) && page is not null)
                return [page];
            if (result is ILocalReferenceOperation local && _resultHolders.TryGetValue(local.Local, out var pages))
                return pages;
            var resolved = Values.Resolve(result);
            if (!ReferenceEquals(resolved, result))
                return AllocResultPages(resolved);
            return [];
        }

        private bool IsOk(IOperation operation) =>
            operation.ConstantValue is { HasValue: true, Value: 0 } && SymbolEqualityComparer.Default.Equals(operation.Type, _symbols.Errno);

        // The operand of '(x & K)' when K includes MigratePfn.Migrate (written with the field).
        private IOperation? MigrateMask(IOperation operation)
        {
            operation = Strip(Values.Resolve(operation));
            if (operation is not IBinaryOperation { OperatorKind: BinaryOperatorKind.And } and)
                return null;
            foreach (var op in and.Descendants())
            {
                if (op is IFieldReferenceOperation field && SymbolEqualityComparer.Default.Equals(field.Field, _symbols.MigrateField))
                    return and;
            }
            return null;
        }

        protected override void OnExit(IOperation? returnedValue, SyntaxNode? syntax, State before, State state)
        {
            foreach (var kv in state.Pages)
            {
                if ((kv.Value & Own.Owned) != 0 && !_escaped.Contains(kv.Key) && _allocSite.TryGetValue(kv.Key, out var site))
                    Report(LeakDescriptor, site, kv.Key.Name, "returns");
            }
            ReportFreedInDst(state, "is still named by a Dst entry when the method returns; finalize drops it again");
        }

        private void ReportFreedInDst(State state, string what)
        {
            foreach (var kv in state.Pages)
            {
                if ((kv.Value & Own.FreedInDst) != 0 && _freeSite.TryGetValue(kv.Key, out var free))
                    Report(DoubleFreeDescriptor, free, kv.Key.Name, $"it is freed here while Dst still names it, and Dst {what}; clear the entry (Dst[i] = 0) after freeing");
            }
        }

        // Uses of a tracked page local that do not take it over: the allocation's out argument, an argument to the
        // kernel's page API (PutPage frees it, LockPage/CopyPage... only use it; MigratePfn.From installs it), to a method
        // whose name does not say it keeps the page, a comparison, the local's own declaration.
        private bool IsOwnershipNeutral(ILocalReferenceOperation reference)
        {
            var parent = reference.Parent;
            while (parent is IConversionOperation)
                parent = parent.Parent;
            switch (parent)
            {
                case IArgumentOperation { Parent: IInvocationOperation invocation } argument:
                    if (argument.Parameter?.RefKind == RefKind.Out)
                        return _symbols.IsAlloc(invocation, out _);
                    if (argument.Parameter?.RefKind is RefKind.Ref)
                        return false;
                    if (_symbols.IsPageApi(invocation.TargetMethod.ContainingType))
                        return true;
                    return !TakesOwnership(invocation.TargetMethod.Name);
                case IBinaryOperation binary:
                    return binary.OperatorKind is BinaryOperatorKind.Equals or BinaryOperatorKind.NotEquals or BinaryOperatorKind.LessThan
                        or BinaryOperatorKind.GreaterThan or BinaryOperatorKind.LessThanOrEqual or BinaryOperatorKind.GreaterThanOrEqual;
                case IDeclarationExpressionOperation:
                    return true;
                default:
                    return false;
            }
        }

        // A driver method given the page by value only uses it (a copy, an offset), unless its name says it keeps or
        // releases it: then the page is its business, and a leak here cannot be told.
        private static bool TakesOwnership(string name)
        {
            foreach (string verb in s_ownershipVerbs)
            {
                if (name.IndexOf(verb, System.StringComparison.Ordinal) >= 0)
                    return true;
            }
            return false;
        }

        private static readonly string[] s_ownershipVerbs =
            ["Free", "Put", "Release", "Add", "Push", "Enqueue", "Insert", "Store", "Return", "Give", "Set", "Install", "Keep", "Track", "Register", "Map"];

        private void Report(DiagnosticDescriptor descriptor, IOperation at, string? name, string? what)
        {
            var location = at.Syntax.GetLocation();
            if (!_reported.Add(location))
                return;
            _context.ReportDiagnostic(name is null ? Diagnostic.Create(descriptor, location) : Diagnostic.Create(descriptor, location, name, what));
        }

        private static IOperation Strip(IOperation operation)
        {
            while (operation is IConversionOperation or IParenthesizedOperation)
                operation = operation is IConversionOperation c ? c.Operand : ((IParenthesizedOperation)operation).Operand;
            return operation;
        }
    }

    private sealed class Symbols
    {
        public Symbols(Compilation compilation)
        {
            Memory = compilation.GetTypeByMetadataName("HmmEmu.Kernel.Memory.PhysicalMemory");
            MigratePfn = compilation.GetTypeByMetadataName("HmmEmu.Kernel.Migration.MigratePfn");
            MigrateVma = compilation.GetTypeByMetadataName("HmmEmu.Kernel.Migration.MigrateVma");
            DeviceMigration = compilation.GetTypeByMetadataName("HmmEmu.Kernel.Migration.DeviceMigration");
            Errno = compilation.GetTypeByMetadataName("HmmEmu.Kernel.Errno");
            Pagemap = compilation.GetTypeByMetadataName("HmmEmu.Kernel.Migration.DevicePagemap");
            var migrate = compilation.GetTypeByMetadataName("HmmEmu.Kernel.Migration.Migrate");
            From = Method(MigratePfn, "From");
            ToPfn = Method(MigratePfn, "ToPfn");
            MigrateField = MigratePfn?.GetMembers("Migrate").OfType<IFieldSymbol>().FirstOrDefault();
            MigrateBit = MigrateField?.ConstantValue is ulong bit ? bit : 2;
            _allocs = [Method(Memory, "AllocPage"), Method(Memory, "AllocContiguous")];
            PutPage = Method(Memory, "PutPage");
            _handoffs = [Method(migrate, "VmaPages"), Method(migrate, "VmaFinalize"), Method(DeviceMigration, "Pages"), Method(DeviceMigration, "Complete")];
        }

        private readonly IMethodSymbol?[] _allocs;
        private readonly IMethodSymbol?[] _handoffs;

        public INamedTypeSymbol? Memory { get; }

        public INamedTypeSymbol? MigratePfn { get; }

        public INamedTypeSymbol? MigrateVma { get; }

        public INamedTypeSymbol? DeviceMigration { get; }

        public INamedTypeSymbol? Errno { get; }

        public INamedTypeSymbol? Pagemap { get; }

        public IMethodSymbol? From { get; }

        public IMethodSymbol? ToPfn { get; }

        public IMethodSymbol? PutPage { get; }

        public IFieldSymbol? MigrateField { get; }

        public ulong MigrateBit { get; }

        // A page allocation whose page lands in a local through an 'out ulong' argument: the kernel's allocators, or a
        // driver's ("Alloc...", "TryAlloc...") returning Errno or bool.
        public bool IsAlloc(IInvocationOperation invocation, out ILocalSymbol? page)
        {
            page = null;
            var method = invocation.TargetMethod;
            bool kernel = _allocs.Any(a => KnownSymbols.IsMethod(method, a));
            if (!kernel && !(method.Name.StartsWith("Alloc", System.StringComparison.Ordinal) || method.Name.StartsWith("TryAlloc", System.StringComparison.Ordinal)))
                return false;
            if (!kernel && !(SymbolEqualityComparer.Default.Equals(method.ReturnType, Errno) || method.ReturnType.SpecialType == SpecialType.System_Boolean))
                return false;
            foreach (var arg in invocation.Arguments)
            {
                if (arg.Parameter is { RefKind: RefKind.Out, Type.SpecialType: SpecialType.System_UInt64 })
                {
                    var value = arg.Value;
                    if (value is IDeclarationExpressionOperation declaration)
                        value = declaration.Expression;
                    if (value is ILocalReferenceOperation local)
                        page = local.Local;
                    return true;
                }
            }
            return false;
        }

        // The kernel's page API (PhysicalMemory, DevicePagemap, MigratePfn): it uses a page, or frees it (PutPage), never keeps it.
        public bool IsPageApi(INamedTypeSymbol? type) =>
            type is not null && (SymbolEqualityComparer.Default.Equals(type, Memory) || SymbolEqualityComparer.Default.Equals(type, MigratePfn)
                                 || SymbolEqualityComparer.Default.Equals(type, Pagemap));

        public bool IsFree(IInvocationOperation invocation) => KnownSymbols.IsMethod(invocation.TargetMethod, PutPage);

        public bool IsHandoff(IInvocationOperation invocation) => _handoffs.Any(h => KnownSymbols.IsMethod(invocation.TargetMethod, h));

        // A store into a destination array: the Dst of a MigrateVma or DeviceMigration, or any ulong array given an entry
        // built by MigratePfn.From (a helper's 'ulong[] dst' parameter).
        public bool IsDstStore(IArrayElementReferenceOperation target, IOperation value)
        {
            if (IsMigrationArray(target.ArrayReference, "Dst"))
                return true;
            return value.DescendantsAndSelf().Any(op => op is IInvocationOperation i && KnownSymbols.IsMethod(i.TargetMethod, From));
        }

        public bool IsMigrationArray(IOperation array, string name)
        {
            while (array is IConversionOperation c)
                array = c.Operand;
            if (array is not IPropertyReferenceOperation property || property.Property.Name != name)
                return false;
            var type = property.Property.ContainingType;
            return SymbolEqualityComparer.Default.Equals(type, MigrateVma) || SymbolEqualityComparer.Default.Equals(type, DeviceMigration);
        }

        private static IMethodSymbol? Method(INamedTypeSymbol? type, string name) =>
            type?.GetMembers(name).OfType<IMethodSymbol>().FirstOrDefault();
    }
}
