namespace HmmEmu.Hardware.Registers;

/// <summary>How the driver side may access the bits of a register field (Renode's field modes, VT-d's masks).</summary>
public enum FieldMode
{
    /// <summary>Read-only: driver writes are ignored; only the device changes the bits.</summary>
    ReadOnly = 0,

    /// <summary>Read-write: a driver write stores the bits.</summary>
    ReadWrite = 1,

    /// <summary>Write-1-to-clear: a 1 written clears the bit, a 0 leaves it; only the device sets it.</summary>
    WriteOneToClear = 2,

    /// <summary>Write-only: a driver write stores the bits, a driver read returns 0 for them.</summary>
    WriteOnly = 3,
}
