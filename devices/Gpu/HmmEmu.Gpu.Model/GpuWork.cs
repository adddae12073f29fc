namespace HmmEmu.Gpu.Model;

/// <summary>What wakes the compute engine's worker.</summary>
internal enum GpuWork
{
    /// <summary>Something changed (doorbell, replay, cancel, context control): look for work.</summary>
    Kick = 0,

    /// <summary>A reset was requested: discard every command, then look for work.</summary>
    Reset = 1,
}
