namespace HmmEmu.Gpu.Model;

/// <summary>A dispatched command with what the command processor learned from its raw entry.</summary>
/// <param name="Command">The decoded command.</param>
/// <param name="ReservedIsZero">Whether the entry's reserved half-word was zero.</param>
internal readonly record struct GpuCommandEntry(GpuCommand Command, bool ReservedIsZero);
