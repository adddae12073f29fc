using HmmEmu.Hardware.Engines;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Engines;

/// <summary>Records which items ran and which were aborted; each run charges <paramref name="runNs"/> of virtual time.</summary>
internal sealed class RecordingHandler(Scheduler scheduler, ulong runNs = 0) : IEngineWorkHandler<int>
{
    private readonly Lock _lock = new();

    public List<int> RanItems { get; } = [];

    public List<int> AbortedItems { get; } = [];

    public void Run(int item)
    {
        scheduler.Charge(runNs);
        lock (_lock)
            RanItems.Add(item);
    }

    public void Abort(int item)
    {
        lock (_lock)
            AbortedItems.Add(item);
    }

    public int Handled
    {
        get { lock (_lock) return RanItems.Count + AbortedItems.Count; }
    }
}
