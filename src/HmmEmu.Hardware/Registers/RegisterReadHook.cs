namespace HmmEmu.Hardware.Registers;

/// <summary>
/// Computes a register's value when the driver reads it (for registers whose value lives in the model, such as a
/// pending-bit array or a free-running counter). Runs on the reader's thread; must not block.
/// </summary>
/// <param name="stored">The register's stored value.</param>
/// <returns>The value the driver reads (write-only bits are still masked to zero afterwards).</returns>
public delegate ulong RegisterReadHook(ulong stored);
