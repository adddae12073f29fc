using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM007: an invalidate callback that returns true on a path where it zapped device mappings (<c>[DeviceZap]</c>)
/// without a TLB flush and wait (<c>[TlbFlush]</c>) after it, or that drops DMA mappings (<c>[DmaUnmap]</c>) on a path
/// where the TLB was not flushed since the callback started or since the last zap.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM007InvalidateMustQuiesceDeviceAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM007";

    private const string Title = "Invalidate callback returns before the device TLB flush, or unmaps before it";

    private const string Description =
        "When the invalidate callback returns, the CPU frees or changes the pages: the device must have stopped using them. Zapping the device page table is not enough while its TLB still caches the old translations; " +
        "and a DMA mapping dropped before the flush lets the device write through a stale translation into memory the IOMMU or the allocator has given to someone else. Zap, flush and wait, then unmap. See docs/rules/HMM007.md.";

    internal static readonly DiagnosticDescriptor ReturnDescriptor = new(
        Id,
        Title,
        messageFormat: "This path of the invalidate callback returns true after zapping device mappings without a TLB flush and wait ([TlbFlush]) since: the device may still use the stale translations",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    internal static readonly DiagnosticDescriptor UnmapDescriptor = new(
        Id,
        Title,
        messageFormat: "'{0}' drops DMA mappings before the device TLB was flushed and waited for ([TlbFlush]) on every path: the device may still DMA through them",
        Describe.Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: Description);

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(ReturnDescriptor, UnmapDescriptor);

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
            start.RegisterOperationBlockAction(block =>
            {
                if (block.OwningSymbol is not IMethodSymbol method || !known.IsInvalidateCallback(method))
                    return;
                var cfg = MethodGraphs.Body(block);
                if (cfg is null)
                    return;
                LockFlowAnalysis.Analyze(cfg, known, new Observer(block), block.CancellationToken);
            });
        });
    }

    private sealed class Observer : FlowObserver
    {
        private readonly OperationBlockAnalysisContext _context;

        public Observer(OperationBlockAnalysisContext context) => _context = context;

        public override void OnCall(in FlowCall call, FlowState before)
        {
            var device = call.Facts.Device;
            if ((device & DeviceEffect.Unmap) == 0)
                return;
            // A helper that flushes and then unmaps ([TlbFlush, DmaUnmap]) is in order by itself.
            bool flushed = (device & DeviceEffect.Flush) != 0 || before.Flushed && (device & DeviceEffect.Zap) == 0;
            if (!flushed)
                _context.ReportDiagnostic(Diagnostic.Create(UnmapDescriptor, call.Operation.Syntax.GetLocation(), Describe.Callee(call)));
        }

        public override void OnReturn(IOperation? returnedValue, SyntaxNode? syntax, FlowState before, FlowState after)
        {
            if (returnedValue?.ConstantValue is { HasValue: true, Value: false } || !after.ZapPending)
                return;
            var location = syntax?.GetLocation() ?? (_context.OwningSymbol.Locations.Length > 0 ? _context.OwningSymbol.Locations[0] : Location.None);
            _context.ReportDiagnostic(Diagnostic.Create(ReturnDescriptor, location));
        }
    }
}
