using HmmEmu.Hardware.Dma;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Locking;

namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>
/// One descriptor the <see cref="EduDriver"/> submitted: its cookie, what it asked for, and how it ended. Finished
/// once, either by its completion record (<see cref="Result"/>) or, when the device lost it (a recovery found no
/// record), as <see cref="Lost"/>.
/// </summary>
internal sealed class EduRequest
{
    private readonly Completion _done;
    private DmaCompletion _result;
    private int _state;    // 0 pending, 1 record, 2 lost

    /// <summary>Creates a pending request.</summary>
    public EduRequest(HostKernel kernel, ulong cookie, DmaDescriptor descriptor)
    {
        Cookie = cookie;
        Descriptor = descriptor;
        _done = new Completion(kernel, "edu request");
    }

    /// <summary>The cookie the device echoes.</summary>
    public ulong Cookie { get; }

    /// <summary>The descriptor as submitted.</summary>
    public DmaDescriptor Descriptor { get; }

    /// <summary>Whether the request has finished.</summary>
    public bool IsFinished => Volatile.Read(ref _state) != 0;

    /// <summary>Whether the request finished without a completion record (the device lost it).</summary>
    public bool Lost => Volatile.Read(ref _state) == 2;

    /// <summary>The completion record; meaningful once finished and not lost.</summary>
    public DmaCompletion Result => _result;

    /// <summary>Waits until the request finishes. May sleep.</summary>
    public void Wait() => _done.Wait();

    /// <summary>Finishes the request with its record. Caller holds the driver's ring lock; never sleeps.</summary>
    public void Finish(in DmaCompletion record)
    {
        _result = record;
        Volatile.Write(ref _state, 1);
        _done.CompleteAll();
    }

    /// <summary>Finishes the request as lost. Caller holds the driver's ring lock; never sleeps.</summary>
    public void FinishLost()
    {
        Volatile.Write(ref _state, 2);
        _done.CompleteAll();
    }

    /// <inheritdoc />
    public override string ToString() => $"edu request 0x{Cookie:x} {Descriptor} state {_state}";
}
