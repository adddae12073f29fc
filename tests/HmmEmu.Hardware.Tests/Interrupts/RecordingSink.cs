using HmmEmu.Kernel.Bus;

namespace HmmEmu.Hardware.Tests.Interrupts;

/// <summary>An interrupt sink that records the vectors it receives, thread-safely.</summary>
internal sealed class RecordingSink : IInterruptSink
{
    private readonly Lock _lock = new();
    private readonly List<int> _vectors = [];

    public IReadOnlyList<int> Vectors
    {
        get { lock (_lock) return [.. _vectors]; }
    }

    public void Raise(int vector)
    {
        lock (_lock)
            _vectors.Add(vector);
    }
}
