namespace HmmEmu.Gpu.Driver;

/// <summary>Where <see cref="GpuContext.Prefetch"/> moves memory.</summary>
public enum GpuMemoryTarget
{
    /// <summary>System RAM (the GPU reaches it over PCIe).</summary>
    System = 0,

    /// <summary>The GPU's VRAM (device-private memory: the CPU faults it back when it touches it).</summary>
    Vram = 1,
}
