namespace HmmEmu.Testing.Selftests;

/// <summary>How a selftest case ended.</summary>
public enum SelftestOutcome
{
    /// <summary>Every assertion held and the kernel raised no warning.</summary>
    Pass,

    /// <summary>An assertion failed, the kernel warned, or something threw.</summary>
    Fail,

    /// <summary>The fixture skipped the case.</summary>
    Skip,
}
