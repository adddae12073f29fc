namespace HmmEmu.Kernel;

/// <summary>
/// A kernel WARN: a rule was broken in a way the kernel survives (it logs and continues), such as an invalidate
/// callback returning false for a blockable range. Collected in <see cref="HostKernel.Warnings"/>.
/// </summary>
/// <param name="Time">Virtual time of the warning.</param>
/// <param name="ThreadName">The simulated thread that hit it.</param>
/// <param name="Message">What was wrong and how to fix it.</param>
public sealed record KernelWarning(ulong Time, string ThreadName, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"WARNING at t={Time}ns on {ThreadName}: {Message}";
}
