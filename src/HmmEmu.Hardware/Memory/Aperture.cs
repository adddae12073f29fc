namespace HmmEmu.Hardware.Memory;

/// <summary>Which memory a device address lands in once translated.</summary>
public enum Aperture : byte
{
    /// <summary>Host system RAM, addressed by physical address (pfn &lt;&lt; 12 | offset).</summary>
    System = 0,

    /// <summary>The device's own local memory (VRAM), addressed by offset from its start.</summary>
    Vram = 1,
}
