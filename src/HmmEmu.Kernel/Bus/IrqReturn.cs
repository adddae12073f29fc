namespace HmmEmu.Kernel.Bus;

/// <summary>What an interrupt handler reports (irqreturn_t).</summary>
public enum IrqReturn
{
    /// <summary>The interrupt was not from this device, or there was nothing to do (IRQ_NONE).</summary>
    None = 0,

    /// <summary>The interrupt was handled (IRQ_HANDLED).</summary>
    Handled = 1,
}
