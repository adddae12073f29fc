namespace HmmEmu.Benchmarks.Gpu;

/// <summary>Where <see cref="GpuSaxpyBenchmarks"/> keeps x and y while the kernel runs.</summary>
public enum GpuSaxpyPlacement
{
    /// <summary>In system memory, reached by the GPU over (modelled) PCIe.</summary>
    System,

    /// <summary>Prefetched to the GPU's VRAM before measuring.</summary>
    Vram,
}
