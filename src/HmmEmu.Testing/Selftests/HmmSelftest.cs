namespace HmmEmu.Testing.Selftests;

/// <summary>One ported selftest case: fixture, variant and test name as the kernel's harness prints them.</summary>
/// <param name="Fixture">"hmm" (one device) or "hmm2" (two devices).</param>
/// <param name="Variant">The fixture variant, e.g. "hmm_device_private".</param>
/// <param name="Name">The test name, e.g. "anon_read".</param>
/// <param name="Body">The test body; runs on the main thread of the test process after setup.</param>
/// <param name="SkipReason">Why the case is skipped (the harness's SKIP), or null.</param>
public sealed record HmmSelftest(string Fixture, string Variant, string Name, Action<SelftestContext> Body, string? SkipReason = null)
{
    /// <summary>The full kselftest name: fixture.variant.test.</summary>
    public string FullName => $"{Fixture}.{Variant}.{Name}";

    /// <inheritdoc />
    public override string ToString() => FullName;
}
