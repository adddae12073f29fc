namespace HmmEmu.Hardware.Dma;

/// <summary>What the DMA engine's worker channel carries: wake-ups, not descriptors (those stay in the ring).</summary>
internal enum DmaCommand
{
    /// <summary>The doorbell rang or completion slots were freed: process the submission ring.</summary>
    Kick = 0,

    /// <summary>Abort everything pending, clear ring errors, report reset done.</summary>
    Reset = 1,

    /// <summary>Abort everything pending and stop accepting doorbells for good.</summary>
    Shutdown = 2,
}
