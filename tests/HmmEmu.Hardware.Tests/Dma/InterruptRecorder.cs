using HmmEmu.Hardware.Dma;

namespace HmmEmu.Hardware.Tests.Dma;

/// <summary>Counts the interrupts a DMA engine raises, per cause.</summary>
internal sealed class InterruptRecorder : IDmaInterruptSink
{
    private readonly int[] _counts = new int[3];

    public int Completions => Volatile.Read(ref _counts[(int)DmaInterrupt.Completion]);

    public int Errors => Volatile.Read(ref _counts[(int)DmaInterrupt.Error]);

    public int ResetsDone => Volatile.Read(ref _counts[(int)DmaInterrupt.ResetDone]);

    public void Raise(DmaInterrupt cause) => Interlocked.Increment(ref _counts[(int)cause]);
}
