using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM006: a call that may run or wait for invalidate callbacks (<c>Hmm.RangeFault</c>, <c>ReadBegin</c>, notifier
/// <c>Remove</c>, anything <c>[MayInvalidate]</c>), or, outside an invalidate callback, a blocking wait
/// (<c>[BlockingWait]</c>), made while holding a lock that an invalidate callback takes. The invalidation waits for the
/// lock; the holder waits for the invalidation: a deadlock, or a callback stalled behind an unrelated wait.
/// </summary>
/// <remarks>
/// The locks taken inside invalidate callbacks are collected over the whole compilation and the calls are matched
/// against them at compilation end (as vs-threading's VSTHRD010 does), so in the IDE these show with full-solution
/// analysis. A lock marked <c>[NotifierUpdateLock]</c> is known up front and reported as the code is typed.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM006FaultOrWaitUnderNotifierLockAnalyzer : CallUnderCallbackLockAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM006";

    private const string Title = "Fault, ReadBegin, notifier Remove or a wait while holding a lock an invalidate callback takes";

    private const string Description =
        "mmu_interval_read_begin and mmu_interval_notifier_remove acquire the lockdep map __mmu_notifier_invalidate_range_start_map because \"the possible sleep on progress in the invalidation requires the caller not hold any locks held by invalidation callbacks\" (mm/mmu_notifier.c). " +
        "hmm_range_fault faults pages, which can start invalidations. Release the lock before the call and re-validate with ReadRetry after taking it again. See docs/rules/HMM006.md.";

    private const string MessageFormat = "'{0}' {1} while '{2}' is held, and the invalidate callback {3} takes '{2}': release it before the call";

    internal static readonly DiagnosticDescriptor Descriptor = new(
        Id, Title, MessageFormat, Describe.Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description: Description);

    internal static readonly DiagnosticDescriptor CompilationEndDescriptor = new(
        Id, Title, MessageFormat, Describe.Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description: Description,
        customTags: WellKnownDiagnosticTags.CompilationEnd);

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Descriptor, CompilationEndDescriptor);

    private protected override DiagnosticDescriptor ImmediateDescriptor => Descriptor;

    private protected override DiagnosticDescriptor EndDescriptor => CompilationEndDescriptor;

    private protected override bool MayContain(bool waits, bool reclaims) => waits;

    private protected override string? Classify(in FlowCall call, bool inCallback) => call.Blocking switch
    {
        BlockingKind.MayInvalidate => "may run or wait for invalidate callbacks",
        BlockingKind.BlockingWait when !inCallback => "waits for another thread or the device",
        _ => null,
    };
}
