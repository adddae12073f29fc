using HmmEmu.Kernel;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Benchmarks;

/// <summary>A kernel and one process, driven from the benchmark's own thread (uncontended, so nothing blocks).</summary>
internal sealed class BenchMachine : IDisposable
{
    public BenchMachine(ulong ramBytes = 256UL << 20)
    {
        // Lock checking off, as in a production kernel; the code paths are otherwise the same.
        Kernel = new HostKernel(KernelOptions.For(1) with { Lockdep = false, RamBytes = ramBytes });
        Process = Kernel.CreateProcess("bench");
    }

    public HostKernel Kernel { get; }

    public Process Process { get; }

    public Mm Mm => Process.Mm;

    /// <summary>Faults every page of [addr, addr + pages*4K) in: writes if <paramref name="write"/>, else reads (zero page).</summary>
    public void Populate(ulong addr, int pages, bool write)
    {
        Span<byte> b = stackalloc byte[1];
        for (int i = 0; i < pages; i++)
        {
            ulong a = addr + ((ulong)i << 12);
            var err = write ? Mm.CopyToUser(a, b) : Mm.CopyFromUser(a, b);
            if (err != Errno.Ok)
                throw new InvalidOperationException($"populate 0x{a:x}: {err}");
        }
    }

    public void Dispose() => Kernel.Dispose();

    /// <summary>A well-behaved notifier callback: publishes the sequence and drops nothing (no device state to drop).</summary>
    internal sealed class SeqOnlyOps : IMmuIntervalNotifierOps
    {
        public long Calls;

        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
        {
            notifier.SetSeq(curSeq);
            Calls++;
            return true;
        }
    }
}
