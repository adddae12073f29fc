namespace HmmEmu.Gpu;

/// <summary>Which engine faulted (fault record byte 0x13).</summary>
public enum GpuEngineId : byte
{
    /// <summary>The compute engine (a kernel's load, store or atomic).</summary>
    Compute = 0,
}
