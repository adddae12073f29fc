namespace HmmEmu.Hardware.Registers;

/// <summary>
/// Called after a driver write to a doorbell register, on the writer's thread and outside the register file's
/// state: it should publish work (wake an engine) and return, not do the work.
/// </summary>
/// <param name="written">The bits the driver wrote, positioned within the register (a write to the high half of a
/// 64-bit register arrives shifted left by 32); bits outside the access are zero.</param>
/// <param name="value">The register's stored value after the write's masks were applied.</param>
public delegate void RegisterWriteHandler(ulong written, ulong value);
