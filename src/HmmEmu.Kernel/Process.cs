using System.Buffers.Binary;
using HmmEmu.Kernel.Fs;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel;

/// <summary>
/// A simulated user process: an address space and the threads that run in it. The typed accessors act as the
/// process's CPU: they go through the software MMU, fault pages in, and throw <see cref="SegmentationFaultException"/>
/// where a real process would get SIGSEGV or SIGBUS.
/// </summary>
public sealed class Process
{
    private int _exited;

    internal Process(HostKernel kernel, int pid, string name, Mm mm)
    {
        Kernel = kernel;
        Pid = pid;
        Name = name;
        Mm = mm;
    }

    /// <summary>The kernel the process runs on.</summary>
    public HostKernel Kernel { get; }

    /// <summary>Process id.</summary>
    public int Pid { get; }

    /// <summary>Command name.</summary>
    public string Name { get; }

    /// <summary>The address space.</summary>
    public Mm Mm { get; }

    /// <summary>The parent, for forked processes.</summary>
    public Process? Parent { get; internal init; }

    /// <summary>Whether <see cref="Exit"/> ran.</summary>
    public bool HasExited => Volatile.Read(ref _exited) != 0;

    /// <summary>Starts a user thread of this process running <paramref name="body"/>.</summary>
    public SimThread StartThread(string name, Action body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Kernel.Scheduler.Spawn($"{Name}[{Pid}]/{name}", WithProcess(body), SimThreadKind.User);
    }

    /// <summary>
    /// Runs <paramref name="body"/> as a new user thread of this process and the whole simulation until it is
    /// quiescent: <see cref="StartThread"/> followed by <see cref="Scheduler.Run(Action?)"/>, with the same trace, but the
    /// calling host thread carries the new thread (no OS thread hand-off in deterministic mode). Host threads only.
    /// </summary>
    public void RunThread(string name, Action body)
    {
        ArgumentNullException.ThrowIfNull(body);
        Kernel.Scheduler.Run($"{Name}[{Pid}]/{name}", WithProcess(body), SimThreadKind.User);
    }

    private Action WithProcess(Action body) => () =>
    {
        TaskContext.For(Kernel).Process = this;
        body();
    };

    /// <summary>fork(2): a child whose address space is a copy-on-write copy of this one. May sleep.</summary>
    public Process Fork()
    {
        ObjectDisposedException.ThrowIf(HasExited, this);
        return Kernel.Fork(this, Mm.Dup());
    }

    /// <summary>exit(2): drops the process's reference on its address space (the last reference tears it down). May sleep.</summary>
    public void Exit()
    {
        if (Interlocked.Exchange(ref _exited, 1) != 0)
            return;
        Mm.MmPut();
    }

    /// <summary>mmap(2) that throws on failure, for test and sample code. Returns the address.</summary>
    public ulong Map(ulong length, Prot prot, MapFlags flags, SimFile? file = null, ulong offset = 0, ulong addr = 0)
    {
        var err = Mm.Mmap(addr, length, prot, flags, out ulong mapped, file, offset);
        return err == Errno.Ok ? mapped : throw new InvalidOperationException($"mmap(0x{addr:x}, {length}, {prot}, {flags}) failed with {err}.");
    }

    /// <summary>Reads bytes as this process's CPU. Throws <see cref="SegmentationFaultException"/> on SIGSEGV/SIGBUS.</summary>
    public void ReadBytes(ulong addr, Span<byte> destination) => Check(false, Mm.Access(addr, destination, default, write: false, out var r, out ulong at), r, at);

    /// <summary>Writes bytes as this process's CPU. Throws <see cref="SegmentationFaultException"/> on SIGSEGV/SIGBUS.</summary>
    public void WriteBytes(ulong addr, ReadOnlySpan<byte> source) => Check(true, Mm.Access(addr, default, source, write: true, out var r, out ulong at), r, at);

    /// <summary>Reads a little-endian 32-bit integer.</summary>
    public int ReadInt32(ulong addr)
    {
        Span<byte> b = stackalloc byte[4];
        ReadBytes(addr, b);
        return BinaryPrimitives.ReadInt32LittleEndian(b);
    }

    /// <summary>Writes a little-endian 32-bit integer.</summary>
    public void WriteInt32(ulong addr, int value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, value);
        WriteBytes(addr, b);
    }

    /// <summary>Atomically adds to a 64-bit word and returns the previous value.</summary>
    public long AtomicAdd64(ulong addr, long value)
    {
        var err = Mm.AtomicAdd64(addr, value, out long old);
        if (err == Errno.EINVAL)
            throw new ArgumentException($"Atomic access at 0x{addr:x} is not 8-byte aligned.", nameof(addr));
        Check(true, err, err == Errno.Ok ? VmFaultResult.Ok : VmFaultResult.SigSegv, addr);
        return old;
    }

    private static void Check(bool write, Errno err, VmFaultResult outcome, ulong addr)
    {
        if (err == Errno.Ok)
            return;
        if (err == Errno.ENOMEM)
            throw new InsufficientMemoryException($"Out of memory faulting 0x{addr:x}.");
        throw new SegmentationFaultException(addr, write, outcome);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name}[{Pid}]";
}
