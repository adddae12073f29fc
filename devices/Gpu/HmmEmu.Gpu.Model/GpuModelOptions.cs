using HmmEmu.Hardware.Dma;

namespace HmmEmu.Gpu.Model;

/// <summary>
/// The shape and virtual-time costs of a <see cref="GpuModel"/>. Bandwidths are in bytes per virtual nanosecond
/// (1 byte/ns = 1 GB/s); each default names where its number comes from.
/// </summary>
public sealed record GpuModelOptions
{
    /// <summary>The defaults.</summary>
    public static GpuModelOptions Default { get; } = new();

    /// <summary>Bytes of VRAM (a positive multiple of 2 MiB). Default 256 MiB (small, so that tests can fill it).</summary>
    public ulong VramBytes { get; init; } = 256UL << 20;

    /// <summary>Sets of each engine's TLB (a power of two). Default 64.</summary>
    public int TlbSets { get; init; } = 64;

    /// <summary>Ways per set of each engine's TLB. Default 4 (64 × 4 = 256 entries, the order of a GPU L1 TLB).</summary>
    public int TlbWays { get; init; } = 4;

    /// <summary>
    /// Fixed cost of one command (fetch, decode, fence write), in virtual ns. Free parameter of the order of a
    /// PCIe round trip for the 64-byte entry and the fence write (~0.5 µs on PCIe 3.0).
    /// </summary>
    public ulong CommandNs { get; init; } = 500;

    /// <summary>
    /// Compute-engine bandwidth to system RAM in bytes per ns: PCIe 3.0 x16 carries ~15.75 GB/s raw and ~12 GB/s in
    /// practice (measured cudaMemcpy rates on PCIe 3.0 x16 systems), so 12.
    /// </summary>
    public ulong SystemBytesPerNs { get; init; } = 12;

    /// <summary>Compute-engine bandwidth to VRAM in bytes per ns: the GTX 1080's GDDR5X peak of 320 GB/s, so 320.</summary>
    public ulong VramBytesPerNs { get; init; } = 320;

    /// <summary>
    /// Device-side cost of taking one replayable fault (the failed walk, the fault-record write over PCIe, the
    /// interrupt), in virtual ns. Free parameter of the order of 1 µs; the host's service time is the driver's own.
    /// </summary>
    public ulong FaultNs { get; init; } = 1_000;

    /// <summary>
    /// Charged to the compute engine when a stalled context is replayed: the far-fault latency of 45 µs that UVMSmart
    /// (Ganguly et al., ISCA 2019, GPGPU-Sim UVM model) uses for a GPU page fault serviced by the host.
    /// </summary>
    public ulong FarFaultNs { get; init; } = 45_000;

    /// <summary>Pointer-chase steps the compute engine runs in one MMU use before it serves another context. Default 64.</summary>
    public int PointerChaseStepsPerChunk { get; init; } = 64;

    /// <summary>
    /// The copy engine's limits and timing. Default: <see cref="DmaEngineOptions.Default"/> at 12 bytes/ns, since
    /// migrations between VRAM and system RAM are bound by PCIe 3.0 x16 (~12 GB/s, as above).
    /// </summary>
    public DmaEngineOptions CopyEngine { get; init; } = DmaEngineOptions.Default with { BytesPerNs = 12 };
}
