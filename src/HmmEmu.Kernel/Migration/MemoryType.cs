namespace HmmEmu.Kernel.Migration;

/// <summary>The kind of device memory a pagemap registers (enum memory_type).</summary>
public enum MemoryType
{
    /// <summary>MEMORY_DEVICE_PRIVATE: the CPU cannot access it; CPU page tables hold device-private entries and a CPU access migrates the page back.</summary>
    DevicePrivate = 1,

    /// <summary>MEMORY_DEVICE_COHERENT: cache-coherent device memory the CPU maps like RAM.</summary>
    DeviceCoherent = 2,
}
