namespace HmmEmu.Rnic;

/// <summary>Command flags (byte 0x01 of a <see cref="RnicCommand"/>).</summary>
[Flags]
public enum RnicCommandFlags : byte
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>Raise INT_STATUS.COMMAND_DONE after the command's completion is written.</summary>
    Interrupt = 1 << 0,
}
