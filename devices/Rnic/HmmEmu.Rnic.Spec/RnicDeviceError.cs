namespace HmmEmu.Rnic;

/// <summary>Device-level errors in ERROR_CODE (each also sets a STATUS error bit and raises INT_STATUS.ERROR).</summary>
public enum RnicDeviceError : uint
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>A register write was refused (ERROR_INFO: the register offset).</summary>
    BadRegister = 1,

    /// <summary>The command queue could not be configured on enable (bad base, response base or size; ERROR_INFO: CMDQ_SIZE).</summary>
    BadCommandQueue = 2,

    /// <summary>A command entry could not be read, its completion could not be written, or CMDQ_TAIL was not a valid
    /// advance; the queue stopped (ERROR_INFO: the queue index).</summary>
    CommandQueueStopped = 3,

    /// <summary>The event queue could not be configured on enable (bad base or size; ERROR_INFO: EQ_SIZE).</summary>
    BadEventQueue = 4,

    /// <summary>An event-queue entry or CQE could not be written (its bus address left memory; ERROR_INFO: the address).</summary>
    WriteBack = 5,

    /// <summary>A doorbell was dropped (ERROR_INFO: its BAR2 offset).</summary>
    BadDoorbell = 6,

    /// <summary>An async event was dropped because the event queue was full (ERROR_INFO: the event type).</summary>
    EventOverflow = 7,
}
