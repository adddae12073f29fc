namespace HmmEmu.Hardware.Dma;

/// <summary>
/// Where a DMA engine raises its interrupts. The device model implements it by signalling an MSI-X vector (or
/// setting a status bit); tests implement it by counting.
/// </summary>
public interface IDmaInterruptSink
{
    /// <summary>
    /// Raises <paramref name="cause"/>. Called on the engine's worker thread once the record it reports is visible in
    /// memory, or, for a refused doorbell or ring configuration, on the thread that wrote the register. Must not
    /// sleep, and must not wait for the engine.
    /// </summary>
    void Raise(DmaInterrupt cause);
}
