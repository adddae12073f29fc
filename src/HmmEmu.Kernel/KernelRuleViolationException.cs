namespace HmmEmu.Kernel;

/// <summary>
/// Thrown when kernel code or a driver breaks a rule of the kernel API: a lock-order inversion, sleeping in atomic
/// context, calling an API without the lock it requires, removing a notifier from its own callback. The message
/// reads like the kernel's own report (lockdep, might_sleep, WARN) and says how to fix the code.
/// </summary>
public sealed class KernelRuleViolationException : Exception
{
    /// <summary>Creates the exception with a report.</summary>
    public KernelRuleViolationException(string message) : base(message) { }

    /// <summary>Creates the exception with a report and a cause.</summary>
    public KernelRuleViolationException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates an empty exception.</summary>
    public KernelRuleViolationException() { }
}
