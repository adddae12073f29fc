using System.Collections.Generic;
using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;
using static HmmEmu.Analyzers.Flow.Operands;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM012: an owner that is not the driver's owner token where the kernel compares owners: compared with
/// <c>MmuNotifierRange.Owner</c> (<c>==</c>, <c>!=</c>, <c>ReferenceEquals</c>, <c>Equals</c>), stored in
/// <c>HmmRange.DevPrivateOwner</c> or <c>MigrateVma.PgmapOwner</c>, passed as <c>Mm.MakeDeviceExclusive</c>'s owner or
/// to a parameter marked <c>[OwnerToken]</c>. The token is a field or property marked <c>[OwnerToken]</c>, <c>this</c>
/// in a class marked <c>[OwnerToken]</c>, a parameter marked <c>[OwnerToken]</c>, or a local assigned only from those;
/// <c>null</c> (no owner) is allowed.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM012OwnerSkipMisuseAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM012";

    private const int MaxDepth = 8;

    internal static readonly DiagnosticDescriptor Descriptor = new(
        Id,
        title: "Owner compared or passed is not the driver's owner token",
        messageFormat: "'{0}' is used as the owner {1}, but it is {2}: owners identify a device's pagemap, so use the device's token (a member marked [OwnerToken])",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "MMU_NOTIFY_MIGRATE and MMU_NOTIFY_EXCLUSIVE ranges carry the pgmap owner of the device that started them, and hmm_range_fault reports device-private pages whose pgmap owner is dev_private_owner. The owner is a device token, not the current task: \"you cannot use range->owner in any way to tell 'we are ourselves the invalidator'\" (Jason Gunthorpe). Anything else skips invalidations the driver must handle, or never matches. See docs/rules/HMM012.md.");

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Descriptor);

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(start =>
        {
            var symbols = new Symbols(start.Compilation);
            if (symbols.OwnerToken is null || symbols.RangeOwner is null)
                return;
            start.RegisterOperationAction(c => OnBinary(c, symbols), OperationKind.Binary);
            start.RegisterOperationAction(c => OnInvocation(c, symbols), OperationKind.Invocation);
            start.RegisterOperationAction(c => OnAssignment(c, symbols), OperationKind.SimpleAssignment);
        });
    }

    private static void OnBinary(OperationAnalysisContext context, Symbols symbols)
    {
        var binary = (IBinaryOperation)context.Operation;
        if (binary.OperatorKind is not (BinaryOperatorKind.Equals or BinaryOperatorKind.NotEquals))
            return;
        Compared(context, symbols, binary.LeftOperand, binary.RightOperand);
    }

    private static void OnInvocation(OperationAnalysisContext context, Symbols symbols)
    {
        var invocation = (IInvocationOperation)context.Operation;
        var method = invocation.TargetMethod;
        if (method.Name is "ReferenceEquals" or "Equals")
        {
            if (method.IsStatic && invocation.Arguments.Length == 2)
                Compared(context, symbols, invocation.Arguments[0].Value, invocation.Arguments[1].Value);
            else if (!method.IsStatic && invocation.Instance is not null && invocation.Arguments.Length == 1)
                Compared(context, symbols, invocation.Instance, invocation.Arguments[0].Value);
            return;
        }
        bool exclusive = KnownSymbols.IsMethod(method, symbols.MakeDeviceExclusive);
        foreach (var arg in invocation.Arguments)
        {
            if (arg.Parameter is not { } parameter || arg.IsImplicit && arg.ArgumentKind == ArgumentKind.DefaultValue)
                continue;
            if (exclusive && parameter.Name == "owner")
                Check(context, symbols, arg.Value, $"for {method.ContainingType.Name}.{method.Name}");
            else if (symbols.IsToken(parameter.OriginalDefinition))
                Check(context, symbols, arg.Value, $"for parameter '{parameter.Name}' of {method.Name}, which is marked [OwnerToken]");
        }
    }

    private static void OnAssignment(OperationAnalysisContext context, Symbols symbols)
    {
        var assignment = (ISimpleAssignmentOperation)context.Operation;
        if (assignment.Target is not IPropertyReferenceOperation property)
            return;
        var member = property.Property.OriginalDefinition;
        if (SymbolEqualityComparer.Default.Equals(member, symbols.DevPrivateOwner) || SymbolEqualityComparer.Default.Equals(member, symbols.PgmapOwner))
            Check(context, symbols, assignment.Value, $"in {member.ContainingType.Name}.{member.Name}");
    }

    // One side of an equality test; if the other is the range's owner, this side must be the token.
    private static void Compared(OperationAnalysisContext context, Symbols symbols, IOperation left, IOperation right)
    {
        if (symbols.IsRangeOwner(left, 0))
            Check(context, symbols, right, "compared with MmuNotifierRange.Owner");
        else if (symbols.IsRangeOwner(right, 0))
            Check(context, symbols, left, "compared with MmuNotifierRange.Owner");
    }

    private static void Check(OperationAnalysisContext context, Symbols symbols, IOperation value, string use)
    {
        string? why = symbols.WhyNotToken(value, 0, new HashSet<ILocalSymbol>(SymbolEqualityComparer.Default));
        if (why is null)
            return;
        context.ReportDiagnostic(Diagnostic.Create(Descriptor, Strip(value).Syntax.GetLocation(), Strip(value).Syntax.ToString(), use, why));
    }

    private sealed class Symbols
    {
        public Symbols(Compilation compilation)
        {
            OwnerToken = compilation.GetTypeByMetadataName("HmmEmu.Annotations.OwnerTokenAttribute");
            RangeOwner = Property(compilation, "HmmEmu.Kernel.Notifiers.MmuNotifierRange", "Owner");
            DevPrivateOwner = Property(compilation, "HmmEmu.Kernel.Mirroring.HmmRange", "DevPrivateOwner");
            PgmapOwner = Property(compilation, "HmmEmu.Kernel.Migration.MigrateVma", "PgmapOwner");
            foreach (var m in compilation.GetTypeByMetadataName("HmmEmu.Kernel.Vm.Mm")?.GetMembers("MakeDeviceExclusive") ?? ImmutableArray<ISymbol>.Empty)
            {
                if (m is IMethodSymbol method)
                    MakeDeviceExclusive = method;
            }
            CurrentTypes = ImmutableArray.Create(
                compilation.GetTypeByMetadataName("System.Threading.Thread"),
                compilation.GetTypeByMetadataName("System.Threading.Tasks.Task"),
                compilation.GetTypeByMetadataName("HmmEmu.Kernel.Process"),
                compilation.GetTypeByMetadataName("HmmEmu.Kernel.Locking.TaskContext"));
        }

        public INamedTypeSymbol? OwnerToken { get; }

        public ISymbol? RangeOwner { get; }

        public ISymbol? DevPrivateOwner { get; }

        public ISymbol? PgmapOwner { get; }

        public IMethodSymbol? MakeDeviceExclusive { get; }

        private ImmutableArray<INamedTypeSymbol?> CurrentTypes { get; }

        public bool IsToken(ISymbol symbol)
        {
            foreach (var a in symbol.GetAttributes())
            {
                if (SymbolEqualityComparer.Default.Equals(a.AttributeClass, OwnerToken))
                    return true;
            }
            return false;
        }

        // MmuNotifierRange.Owner, directly or through a local assigned only from it.
        public bool IsRangeOwner(IOperation operation, int depth)
        {
            operation = Strip(operation);
            if (operation is IPropertyReferenceOperation p)
                return SymbolEqualityComparer.Default.Equals(p.Property.OriginalDefinition, RangeOwner);
            if (operation is not ILocalReferenceOperation l || depth >= MaxDepth)
                return false;
            var values = AssignedValues(l);
            if (values is null || values.Count == 0)
                return false;
            foreach (var v in values)
            {
                if (!IsRangeOwner(v, depth + 1))
                    return false;
            }
            return true;
        }

        /// <summary>Null if <paramref name="value"/> is the token (or null); otherwise what it is instead.</summary>
        public string? WhyNotToken(IOperation value, int depth, HashSet<ILocalSymbol> visiting)
        {
            value = Strip(value);
            if (value.ConstantValue is { HasValue: true, Value: null })
                return null;
            if (depth >= MaxDepth)
                return "not traced to a member marked [OwnerToken]";
            if (value is IFieldReferenceOperation { Field: var field } && IsToken(field.OriginalDefinition)
                || value is IPropertyReferenceOperation { Property: var property } && IsToken(property.OriginalDefinition)
                || value is IParameterReferenceOperation { Parameter: var parameter } && IsToken(parameter.OriginalDefinition))
                return null;
            if (IsCurrent(value))
                return "the current thread, task or process, and the owner is a device token, not 'current'";
            switch (value)
            {
                case IFieldReferenceOperation f:
                    return $"field '{f.Field.Name}', which is not marked [OwnerToken]";
                case IPropertyReferenceOperation p:
                    return $"property '{p.Property.Name}', which is not marked [OwnerToken]";
                case IParameterReferenceOperation p:
                    return $"parameter '{p.Parameter.Name}', which is not marked [OwnerToken]";
                case IInstanceReferenceOperation i:
                    for (var t = i.Type as INamedTypeSymbol; t is not null; t = t.BaseType)
                    {
                        if (IsToken(t))
                            return null;
                    }
                    return $"this {i.Type?.Name}, and {i.Type?.Name} is not marked [OwnerToken]";
                case IObjectCreationOperation or IAnonymousObjectCreationOperation:
                    return "a new object, which no invalidation or device page carries";
                case ILocalReferenceOperation l:
                    if (!visiting.Add(l.Local))
                        return null;   // a cycle adds nothing; the other assignments decide
                    var values = AssignedValues(l);
                    if (values is null || values.Count == 0)
                        return $"local '{l.Local.Name}', which is not traced to a member marked [OwnerToken]";
                    foreach (var v in values)
                    {
                        if (WhyNotToken(v, depth + 1, visiting) is not null)
                            return $"local '{l.Local.Name}', which is not traced to a member marked [OwnerToken]";
                    }
                    return null;
                case IConditionalOperation { WhenFalse: { } whenFalse } conditional:
                    return WhyNotToken(conditional.WhenTrue, depth + 1, visiting) ?? WhyNotToken(whenFalse, depth + 1, visiting);
                case ICoalesceOperation coalesce:
                    return WhyNotToken(coalesce.Value, depth + 1, visiting) ?? WhyNotToken(coalesce.WhenNull, depth + 1, visiting);
                default:
                    return "not a member marked [OwnerToken]";
            }
        }

        private bool IsCurrent(IOperation value)
        {
            if (value is IPropertyReferenceOperation p && p.Property.Name.StartsWith("Current", System.StringComparison.Ordinal))
                return true;
            if (value is IInvocationOperation inv && inv.TargetMethod.Name.StartsWith("GetCurrent", System.StringComparison.Ordinal))
                return true;
            foreach (var t in CurrentTypes)
            {
                for (var type = value.Type; t is not null && type is not null; type = type.BaseType)
                {
                    if (SymbolEqualityComparer.Default.Equals(type.OriginalDefinition, t))
                        return true;
                }
            }
            return false;
        }

        // The values a local is assigned in its method; null if some assignment is not a plain one (out, ref,
        // deconstruction, pattern, foreach), so the local cannot be traced.
        private static List<IOperation>? AssignedValues(ILocalReferenceOperation reference)
        {
            var root = (IOperation)reference;
            while (root.Parent is not null)
                root = root.Parent;
            var values = new List<IOperation>();
            var local = reference.Local;
            foreach (var op in root.DescendantsAndSelf())
            {
                switch (op)
                {
                    case IVariableDeclaratorOperation declarator when SymbolEqualityComparer.Default.Equals(declarator.Symbol, local):
                        if (declarator.Initializer is { } init)
                            values.Add(init.Value);
                        else if (declarator.Parent is IVariableDeclarationOperation { Initializer: { } shared })
                            values.Add(shared.Value);
                        break;
                    case ISimpleAssignmentOperation { Target: ILocalReferenceOperation target } assign when SymbolEqualityComparer.Default.Equals(target.Local, local):
                        values.Add(assign.Value);
                        break;
                    case ILocalReferenceOperation other when SymbolEqualityComparer.Default.Equals(other.Local, local) && IsOtherWrite(other):
                        return null;
                    case IForEachLoopOperation loop when loop.Locals.Contains(local, SymbolEqualityComparer.Default):
                        return null;
                }
            }
            return values;
        }

        private static bool IsOtherWrite(ILocalReferenceOperation reference) =>
            reference.IsDeclaration && reference.Parent is not IVariableDeclaratorOperation
            || reference.Parent is IArgumentOperation { Parameter.RefKind: RefKind.Out or RefKind.Ref }
            || reference.Parent is ICompoundAssignmentOperation or IDeconstructionAssignmentOperation or ICoalesceAssignmentOperation
            || reference.Parent is IDeclarationPatternOperation;

        private static ISymbol? Property(Compilation compilation, string type, string name)
        {
            foreach (var m in compilation.GetTypeByMetadataName(type)?.GetMembers(name) ?? ImmutableArray<ISymbol>.Empty)
            {
                if (m is IPropertySymbol p)
                    return p;
            }
            return null;
        }
    }
}
