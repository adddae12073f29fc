namespace HmmEmu.Hardware.Engines;

/// <summary>What an <see cref="EngineWorker{T}"/> does with each item: run it, or abort it when the worker stops.</summary>
/// <typeparam name="T">The work item type.</typeparam>
public interface IEngineWorkHandler<in T>
{
    /// <summary>Runs <paramref name="item"/> on the worker's simulated thread. May sleep and charge virtual time.</summary>
    void Run(T item);

    /// <summary>
    /// Answers <paramref name="item"/> without running it, because the worker is stopping in
    /// <see cref="WorkerStopMode.Abort"/> mode. Runs on the worker's simulated thread. Should not sleep.
    /// </summary>
    void Abort(T item);
}
