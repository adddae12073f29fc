namespace HmmEmu.Gpu;

/// <summary>Command flags (byte 0x01 of a <see cref="GpuCommand"/>).</summary>
[Flags]
public enum GpuCommandFlags : byte
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>Raise INT_STATUS.FENCE after the command's fence is written (or after it finished, with no fence).</summary>
    Interrupt = 1 << 0,
}
