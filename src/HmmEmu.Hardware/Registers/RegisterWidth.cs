namespace HmmEmu.Hardware.Registers;

/// <summary>The size of a register; the value is its size in bytes.</summary>
public enum RegisterWidth
{
    /// <summary>A 32-bit register (4 bytes, 4-byte aligned).</summary>
    Bits32 = 4,

    /// <summary>A 64-bit register (8 bytes, 8-byte aligned); its 32-bit halves may also be accessed alone.</summary>
    Bits64 = 8,
}
