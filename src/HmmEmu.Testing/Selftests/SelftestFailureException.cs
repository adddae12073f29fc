namespace HmmEmu.Testing.Selftests;

/// <summary>An ASSERT_* of a ported selftest failed.</summary>
public sealed class SelftestFailureException : Exception
{
    /// <summary>Creates the failure with the assertion text.</summary>
    public SelftestFailureException(string message) : base(message) { }

    /// <summary>Creates the failure with the assertion text and cause.</summary>
    public SelftestFailureException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the failure.</summary>
    public SelftestFailureException() { }
}
