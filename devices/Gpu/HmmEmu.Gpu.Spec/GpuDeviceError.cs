namespace HmmEmu.Gpu;

/// <summary>Device-level errors in ERROR_CODE (each also sets a STATUS error bit and raises INT_STATUS.ERROR).</summary>
public enum GpuDeviceError : uint
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>A register write was refused (ERROR_INFO: the register offset).</summary>
    BadRegister = 1,

    /// <summary>The command ring could not be configured on enable (bad base or size; ERROR_INFO: CMD_SIZE).</summary>
    BadCommandRing = 2,

    /// <summary>A command entry could not be read or names no context; the ring stopped (ERROR_INFO: its index).</summary>
    CommandRingStopped = 3,

    /// <summary>The fault buffer could not be configured on enable (bad base or size).</summary>
    BadFaultBuffer = 4,

    /// <summary>The copy engine's rings could not be configured, or it reported an error.</summary>
    CopyEngine = 5,

    /// <summary>A fence or fault record could not be written (its bus address left memory).</summary>
    WriteBack = 6,
}
