namespace HmmEmu.Gpu;

/// <summary>
/// The compute kernels the GPU runs (<see cref="GpuCommand.Kernel"/>) and their arguments. Pointers are device virtual
/// addresses of the command's context (with shared virtual memory: the process's own pointers); elements are
/// little-endian; every pointer must be aligned to its element size.
/// </summary>
public enum GpuKernel : ushort
{
    /// <summary>No kernel (invalid in a LAUNCH).</summary>
    None = 0,

    /// <summary>Fill: <c>dst[i] = value</c> for i &lt; count; u32 elements. Args: dst, count, value (low 32 bits).</summary>
    Fill = 1,

    /// <summary>Copy: <c>bytes</c> bytes from src to dst (the ranges must not overlap). Args: dst, src, bytes.</summary>
    Copy = 2,

    /// <summary>SAXPY: <c>y[i] = a·x[i] + y[i]</c> for i &lt; count; f32 elements. Args: y, x, count, a (f32 bits in the
    /// low 32 bits).</summary>
    Saxpy = 3,

    /// <summary>Reduce-sum: <c>*dst = Σ src[i]</c> for i &lt; count, u32 elements summed as a wrapping u64 written to dst.
    /// Args: dst, src, count.</summary>
    ReduceSum = 4,

    /// <summary>Atomic add: <c>dst[i] += addend</c> atomically for i &lt; count; u64 elements; the pages must be mapped
    /// with the atomic right. Args: dst, count, addend.</summary>
    AtomicAdd = 5,

    /// <summary>Pointer chase: <c>p = start; repeat steps: p = *(u64*)p; *dst = p</c>. Args: start, steps, dst.</summary>
    PointerChase = 6,
}
