namespace MyDevice;

/// <summary>
/// BAR0 of the device: offsets in bytes, with the bit fields of each register. The model implements exactly this map
/// and the driver programs the device only through it. Add your device's registers here first.
/// </summary>
public static class MyDevRegisters
{
    /// <summary>PCI vendor id the driver binds to.</summary>
    public const ushort VendorId = 0x1de5;

    /// <summary>PCI device id the driver binds to.</summary>
    public const ushort DeviceId = 0x0001;

    /// <summary>Bytes BAR0 spans.</summary>
    public const ulong Bar0Size = 0x1000;

    /// <summary>ID (32-bit, read-only): reads <see cref="IdValue"/>.</summary>
    public const ulong Id = 0x00;

    /// <summary>The value of <see cref="Id"/>: the driver refuses a device that reads anything else.</summary>
    public const uint IdValue = 0x4d44_0001;

    /// <summary>TLB_ADDR (64-bit, read-write): first device (= process virtual) address of the next invalidation.</summary>
    public const ulong TlbAddr = 0x10;

    /// <summary>TLB_SIZE (64-bit, read-write): bytes of the next invalidation; non-zero and not wrapping.</summary>
    public const ulong TlbSize = 0x18;

    /// <summary>TLB_CMD (32-bit, write-only): writing <see cref="TlbCmdInvalidateRange"/> starts an invalidation.</summary>
    public const ulong TlbCmd = 0x20;

    /// <summary>TLB_CMD value: invalidate [TLB_ADDR, TLB_ADDR + TLB_SIZE). Any other value is refused (TLB_STATUS.ERROR).</summary>
    public const uint TlbCmdInvalidateRange = 1;

    /// <summary>TLB_STATUS (32-bit, read-only): <see cref="TlbStatusDone"/> and <see cref="TlbStatusError"/>.</summary>
    public const ulong TlbStatus = 0x24;

    /// <summary>TLB_STATUS.DONE [0]: every invalidation issued has completed; the device no longer uses the translations.</summary>
    public const uint TlbStatusDone = 1u << 0;

    /// <summary>TLB_STATUS.ERROR [1]: the last TLB_CMD was refused (bad command, size 0 or a wrapping range).</summary>
    public const uint TlbStatusError = 1u << 1;

    /// <summary>TLB_INVALIDATIONS (64-bit, read-only): invalidations completed since reset.</summary>
    public const ulong TlbInvalidations = 0x28;
}
