using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel;

/// <summary>A simulated user thread touched memory it may not (SIGSEGV) or that has no backing (SIGBUS).</summary>
public sealed class SegmentationFaultException : Exception
{
    /// <summary>Creates the exception for an access at <paramref name="address"/>.</summary>
    public SegmentationFaultException(ulong address, bool write, VmFaultResult outcome)
        : base($"{(outcome == VmFaultResult.SigBus ? "SIGBUS" : "SIGSEGV")}: {(write ? "write to" : "read of")} 0x{address:x} ({outcome}).")
    {
        Address = address;
        IsWrite = write;
        Outcome = outcome;
    }

    /// <summary>Creates the exception with a message.</summary>
    public SegmentationFaultException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and cause.</summary>
    public SegmentationFaultException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception.</summary>
    public SegmentationFaultException() { }

    /// <summary>The faulting address.</summary>
    public ulong Address { get; }

    /// <summary>Whether the access was a write.</summary>
    public bool IsWrite { get; }

    /// <summary>The fault handler's verdict.</summary>
    public VmFaultResult Outcome { get; }
}
