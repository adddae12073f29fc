using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The method may run mmu-notifier invalidate callbacks or wait for running ones (<c>mmu_interval_read_begin</c>,
/// <c>mmu_interval_notifier_remove</c>, <c>hmm_range_fault</c>, <c>munmap</c>, <c>migrate_vma_setup</c>). Implies
/// <see cref="MayBlockAttribute"/>. The caller must not hold any lock an invalidate callback takes (HMM006); the
/// kernel's lockdep learns the same through <c>__mmu_notifier_invalidate_range_start_map</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Constructor, Inherited = false)]
public sealed class MayInvalidateAttribute : Attribute
{
}
