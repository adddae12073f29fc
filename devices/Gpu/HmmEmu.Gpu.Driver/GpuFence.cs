namespace HmmEmu.Gpu.Driver;

/// <summary>A point in one context's command stream: done once the device has written <see cref="Value"/> to its fence.</summary>
/// <param name="Context">The context id.</param>
/// <param name="Value">The fence value (1 for the first command of the context).</param>
public readonly record struct GpuFence(ushort Context, ulong Value);
