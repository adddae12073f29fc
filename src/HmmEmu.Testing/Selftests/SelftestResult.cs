namespace HmmEmu.Testing.Selftests;

/// <summary>The result of running one selftest case.</summary>
/// <param name="Test">The case.</param>
/// <param name="Outcome">Pass, fail or skip.</param>
/// <param name="Message">Why it failed or skipped.</param>
/// <param name="TraceHash">The machine's trace hash at the end (same seed, same hash in deterministic mode).</param>
/// <param name="VirtualNs">Virtual time the case took.</param>
public sealed record SelftestResult(HmmSelftest Test, SelftestOutcome Outcome, string? Message, ulong TraceHash, ulong VirtualNs);
