namespace HmmEmu.Gpu;

/// <summary>CTX_STATUS.ERROR: why a context stopped (CTX_ERROR_ADDRESS holds the address involved, if any).</summary>
public enum GpuContextError : uint
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The driver cancelled a fault of this context (FAULT_CANCEL): the address could not be mapped.</summary>
    FaultCancelled = 1,

    /// <summary>A command had an unknown opcode, kernel or flags.</summary>
    BadCommand = 2,

    /// <summary>A kernel's arguments were unusable: a misaligned pointer, a zero or overflowing count.</summary>
    BadArgument = 3,

    /// <summary>The context's page-table base is not a valid table entry, or a table entry was malformed.</summary>
    BadPageTable = 4,

    /// <summary>A command named a context whose CTX_CONTROL.VALID is clear.</summary>
    ContextInvalid = 5,

    /// <summary>The device was reset while the context had work.</summary>
    DeviceReset = 6,

    /// <summary>An address at or above 2^48 (outside the device's virtual address space).</summary>
    AddressOutOfRange = 7,
}
