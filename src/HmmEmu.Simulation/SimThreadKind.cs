namespace HmmEmu.Simulation;

/// <summary>What a simulated thread stands for. Used for naming, traces and statistics.</summary>
public enum SimThreadKind
{
    /// <summary>A thread of a simulated user process.</summary>
    User,

    /// <summary>A kernel thread: work-queue worker, fault handler, reaper.</summary>
    Kernel,

    /// <summary>A device engine or worker (DMA, copy engine, command processor).</summary>
    Device,
}
