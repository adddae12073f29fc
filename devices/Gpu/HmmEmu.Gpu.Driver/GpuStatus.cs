namespace HmmEmu.Gpu.Driver;

/// <summary>
/// What <see cref="GpuContext.Synchronize"/> reports: success, or the context's (sticky) error with the address
/// involved and an explanation. Errors of GPU work never become host exceptions.
/// </summary>
/// <param name="Error">The context error, <see cref="GpuContextError.None"/> on success.</param>
/// <param name="Address">The device (process) address behind the error, if any.</param>
/// <param name="Message">A sentence for the user: what failed and why.</param>
public readonly record struct GpuStatus(GpuContextError Error, ulong Address, string Message)
{
    /// <summary>Success.</summary>
    public static GpuStatus Success { get; } = new(GpuContextError.None, 0, "ok");

    /// <summary>Whether the work succeeded.</summary>
    public bool IsOk => Error == GpuContextError.None;

    /// <inheritdoc />
    public override string ToString() => IsOk ? "ok" : $"{Error} at 0x{Address:x}: {Message}";
}
