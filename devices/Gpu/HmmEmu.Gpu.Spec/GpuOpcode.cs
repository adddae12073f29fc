namespace HmmEmu.Gpu;

/// <summary>Command opcodes (byte 0x00 of a <see cref="GpuCommand"/>).</summary>
public enum GpuOpcode : byte
{
    /// <summary>Does nothing but write its fence (if any) in order with the context's other work.</summary>
    Nop = 0,

    /// <summary>Runs a compute kernel (<see cref="GpuCommand.Kernel"/>) over the context's virtual addresses.</summary>
    Launch = 1,
}
