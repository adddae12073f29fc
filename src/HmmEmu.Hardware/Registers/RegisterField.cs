namespace HmmEmu.Hardware.Registers;

/// <summary>A named bit field of a register, for declaration and for the documentation table.</summary>
/// <param name="Name">Field name, e.g. "ENABLE".</param>
/// <param name="Lsb">Lowest bit of the field.</param>
/// <param name="Width">Number of bits.</param>
/// <param name="Mode">How the driver may access it.</param>
public readonly record struct RegisterField(string Name, int Lsb, int Width, FieldMode Mode)
{
    /// <summary>The field's bits within the register.</summary>
    public ulong Mask => Width >= 64 ? ~0UL << Lsb : ((1UL << Width) - 1) << Lsb;

    /// <summary>The field's bit range in the usual notation: "[7:0]" or "[3]".</summary>
    public string BitRange => Width == 1 ? $"[{Lsb}]" : $"[{Lsb + Width - 1}:{Lsb}]";
}
