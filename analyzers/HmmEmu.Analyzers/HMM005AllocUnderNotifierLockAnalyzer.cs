using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers;

/// <summary>
/// HMM005: an allocation that may enter direct reclaim (<c>[MayReclaim]</c> with flags that allow it:
/// <c>AllocPage(Gfp.Kernel, ...)</c>, <c>AllocCoherent</c>, <c>MightAlloc(Gfp.Kernel)</c>) made while holding a lock that
/// an invalidate callback takes. Reclaim invalidates device mappings, the callback waits for the lock, the allocating
/// thread waits for reclaim.
/// </summary>
/// <remarks>
/// Same cross-method machinery as HMM006: the locks taken in invalidate callbacks are collected over the compilation and
/// matched at compilation end; a lock marked <c>[NotifierUpdateLock]</c> is reported at once. Inside a callback too: an
/// allocation there under the callback's own lock can reclaim into the same callback.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HMM005AllocUnderNotifierLockAnalyzer : CallUnderCallbackLockAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "HMM005";

    private const string Title = "Allocation that may reclaim while holding a lock an invalidate callback takes";

    private const string Description =
        "Direct reclaim can invalidate device mappings, and the invalidate callback then waits for the lock the allocating thread holds (Felix Kuehling's lockdep splat &prange->lock -> fs_reclaim -> mmu_notifier_invalidate_range_start; drm_gpusvm primes lockdep with fs_reclaim_acquire + might_lock(notifier_lock) for this). " +
        "Allocate before taking the lock and re-validate after, or allocate with Gfp.Atomic/Gfp.NoWait and handle failure. See docs/rules/HMM005.md.";

    private const string MessageFormat = "'{0}' {1} while '{2}' is held, and the invalidate callback {3} takes '{2}': allocate before taking the lock, or with Gfp.Atomic";

    internal static readonly DiagnosticDescriptor Descriptor = new(
        Id, Title, MessageFormat, Describe.Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description: Description);

    internal static readonly DiagnosticDescriptor CompilationEndDescriptor = new(
        Id, Title, MessageFormat, Describe.Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description: Description,
        customTags: WellKnownDiagnosticTags.CompilationEnd);

    private const string What = "may enter reclaim, which invalidates";

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Descriptor, CompilationEndDescriptor);

    private protected override DiagnosticDescriptor ImmediateDescriptor => Descriptor;

    private protected override DiagnosticDescriptor EndDescriptor => CompilationEndDescriptor;

    private protected override bool MayContain(bool waits, bool reclaims) => reclaims;

    // Blocking is None when the allocation flags forbid reclaim (Gfp.Atomic, Gfp.NoWait).
    private protected override string? Classify(in FlowCall call, bool inCallback) =>
        call.Facts.Reclaims && call.Blocking != BlockingKind.None ? What : null;
}
