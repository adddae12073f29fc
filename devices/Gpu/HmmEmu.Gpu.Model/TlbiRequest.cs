using HmmEmu.Hardware.Mmu;

namespace HmmEmu.Gpu.Model;

/// <summary>One accepted TLBI_TRIGGER: the tickets of every engine's TLB, completed in issue order.</summary>
/// <param name="Generation">The register generation it was issued in (a function-level reset starts a new one).</param>
/// <param name="Compute">The compute engine's ticket.</param>
/// <param name="Copy">The copy engine's ticket.</param>
internal sealed record TlbiRequest(long Generation, TlbInvalidation Compute, TlbInvalidation Copy);
