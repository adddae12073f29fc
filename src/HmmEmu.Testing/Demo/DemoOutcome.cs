namespace HmmEmu.Testing.Demo;

/// <summary>What a workload found when it compared its result with the CPU's computation.</summary>
/// <param name="Verified">Every checked element matched the CPU's result.</param>
/// <param name="Detail">What was checked and what the machine really did (or the first mismatch).</param>
public sealed record DemoOutcome(bool Verified, string Detail);
