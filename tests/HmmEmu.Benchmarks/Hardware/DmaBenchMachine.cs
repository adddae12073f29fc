using System.Diagnostics;
using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Rings;
using HmmEmu.Hardware.Translation;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using HmmEmu.Simulation;

namespace HmmEmu.Benchmarks.Hardware;

/// <summary>How a <see cref="DmaBenchMachine"/>'s engine translates descriptor addresses.</summary>
public enum DmaBenchTranslator
{
    /// <summary>No IOMMU: bus addresses are physical addresses (<see cref="BusAddressTranslator"/>).</summary>
    Bus,

    /// <summary>A <see cref="DeviceMmu"/> whose TLB holds every page of the transfer (2048 entries): TLB hits after the first run.</summary>
    Mmu,

    /// <summary>A <see cref="DeviceMmu"/> with the default 256-entry TLB, smaller than the transfer: a walk for every page.</summary>
    MmuSmallTlb,
}

/// <summary>
/// A threaded-mode kernel, a DMA engine (its worker spinning 20 µs when idle before it sleeps, unless told otherwise)
/// with configured 16-entry rings and the driver side of it, driven from the benchmark's own (host) thread: write descriptors, ring the doorbell, sleep until the completion interrupt, consume
/// the records. The lock checker is off, as in the other benchmarks.
/// </summary>
internal sealed class DmaBenchMachine : IDisposable
{
    /// <summary>The address-space id the MMU translators map the buffers in.</summary>
    public const ushort Asid = 1;

    private const uint RingEntries = 16;
    private const ulong SourceVa = 0x10_0000_0000;
    private const ulong DestinationVa = 0x20_0000_0000;

    private readonly ulong _sqBase;
    private readonly ulong _cqBase;
    private readonly InterruptCounter _interrupts;
    private uint _sqProducer;
    private uint _cqConsumer;
    private long _completionsSeen;

    /// <summary>
    /// Builds the machine with a source and a destination buffer of <paramref name="bufferBytes"/> (a power-of-two number
    /// of pages) each; the engine's idle worker spins <paramref name="idleSpinRounds"/> rounds before it sleeps.
    /// </summary>
    public DmaBenchMachine(DmaBenchTranslator translator, int bufferBytes, int idleSpinRounds = 200)
    {
        Kernel = new HostKernel(KernelOptions.For(1, SchedulerMode.Threaded) with { Lockdep = false, RamBytes = 64UL << 20 });
        Memory = new SystemMemoryPort(Kernel.Memory);
        int pages = Math.Max(1, bufferBytes >> 12);
        ulong srcPhys = Alloc(pages), dstPhys = Alloc(pages);
        _sqBase = Alloc(1);
        _cqBase = Alloc(1);
        ITranslator t;
        if (translator == DmaBenchTranslator.Bus)
        {
            t = new BusAddressTranslator(Memory);
            Source = srcPhys;
            Destination = dstPhys;
        }
        else
        {
            var roots = new PageTableRoots(4);
            var options = translator == DmaBenchTranslator.Mmu
                ? DeviceMmuOptions.Default with { TlbSets = 512, TlbWays = 4 }
                : DeviceMmuOptions.Default;
            var mmu = new DeviceMmu(Kernel.Scheduler, roots, Memory, null, options);
            roots[Asid] = DevicePte.Table(Aperture.System, Alloc(1));
            for (int i = 0; i < pages; i++)
            {
                ulong off = (ulong)i << 12;
                Map(roots, SourceVa + off, DevicePte.Leaf(Aperture.System, srcPhys + off, PtePermissions.Read));
                Map(roots, DestinationVa + off, DevicePte.Leaf(Aperture.System, dstPhys + off, PtePermissions.ReadWrite));
            }
            t = mmu;
            Source = SourceVa;
            Destination = DestinationVa;
        }
        _interrupts = new InterruptCounter(Kernel.Scheduler);
        Engine = new DmaEngine(Kernel.Scheduler, "bench", t, Memory, null, _interrupts, new DmaEngineOptions { IdleSpinRounds = idleSpinRounds });
        if (Engine.ConfigureSubmissionRing(_sqBase, RingEntries) != RingError.None
            || Engine.ConfigureCompletionRing(_cqBase, RingEntries) != RingError.None)
        {
            throw new InvalidOperationException("The bench rings failed to configure.");
        }
        Span<byte> page = stackalloc byte[4096];
        for (int i = 0; i < bufferBytes; i += 4096)
        {
            page.Fill((byte)(i >> 12));
            if (!Memory.TryWrite(srcPhys + (ulong)i, page[..Math.Min(4096, bufferBytes - i)]))
                throw new InvalidOperationException("Could not fill the source buffer.");
        }
    }

    public HostKernel Kernel { get; }

    public SystemMemoryPort Memory { get; }

    public DmaEngine Engine { get; }

    /// <summary>The source buffer's device address.</summary>
    public ulong Source { get; }

    /// <summary>The destination buffer's device address.</summary>
    public ulong Destination { get; }

    /// <summary>Writes <paramref name="count"/> copies of <paramref name="length"/> bytes (interrupt on the last) and rings the doorbell once.</summary>
    public void Submit(uint length, int count = 1)
    {
        Span<byte> entry = stackalloc byte[DmaDescriptor.Size];
        for (int i = 0; i < count; i++)
        {
            var flags = i == count - 1 ? DmaFlags.InterruptOnCompletion : DmaFlags.None;
            DmaDescriptor.Copy(Source, Destination, length, cookie: (ulong)i, flags, Asid).Write(entry);
            ulong slot = _sqBase + ((_sqProducer & (RingEntries - 1)) * (ulong)DmaDescriptor.Size);
            if (!Memory.TryWrite(slot, entry))
                throw new InvalidOperationException("Could not write a descriptor.");
            _sqProducer = (_sqProducer + 1) & ((2 * RingEntries) - 1);
        }
        Engine.Doorbell(_sqProducer);
    }

    /// <summary>
    /// Waits for the next completion interrupt, then checks and consumes every posted record. The driver spins up to
    /// 20 µs and then sleeps until its interrupt handler wakes it; with <paramref name="poll"/> it spins until the
    /// interrupt, as a polling driver does. May sleep.
    /// </summary>
    public void WaitAndConsume(int expected, bool poll = false)
    {
        long target = ++_completionsSeen;
        _interrupts.WaitFor(target, poll);
        Span<byte> record = stackalloc byte[DmaCompletion.Size];
        int n = 0;
        uint producer = Engine.Completion.Producer;
        while (_cqConsumer != producer)
        {
            ulong slot = _cqBase + ((_cqConsumer & (RingEntries - 1)) * (ulong)DmaCompletion.Size);
            if (!Memory.TryRead(slot, record) || DmaCompletion.Read(record).Status != DmaStatus.Completed)
                throw new InvalidOperationException($"DMA failed: {DmaCompletion.Read(record)}");
            _cqConsumer = (_cqConsumer + 1) & ((2 * RingEntries) - 1);
            n++;
        }
        if (n != expected)
            throw new InvalidOperationException($"Expected {expected} completions, found {n}.");
        Engine.CompletionConsumed(_cqConsumer);
    }

    public void Dispose()
    {
        Engine.Dispose();
        Kernel.Dispose();
    }

    private ulong Alloc(int pages)
    {
        int order = System.Numerics.BitOperations.Log2((uint)pages);
        if (Kernel.Memory.AllocContiguous(order, Gfp.Kernel | Gfp.Zero, out ulong pfn) != Errno.Ok)
            throw new InvalidOperationException($"Could not allocate {pages} pages.");
        return pfn << PhysicalMemory.PageShift;
    }

    // Writes a 4 KiB leaf for va, creating the tables on the way (all in system memory).
    private void Map(PageTableRoots roots, ulong va, DevicePte leaf)
    {
        var table = roots[Asid];
        for (int level = DevicePageTable.Levels; level > 1; level--)
        {
            ulong ea = DevicePageTable.EntryAddress(table.Address, level, va);
            Memory.TryReadUInt64(ea, out ulong raw);
            var entry = new DevicePte(raw);
            if (!entry.IsValid)
            {
                entry = DevicePte.Table(Aperture.System, Alloc(1));
                Memory.TryWriteUInt64(ea, entry.Value);
            }
            table = entry;
        }
        Memory.TryWriteUInt64(DevicePageTable.EntryAddress(table.Address, 1, va), leaf.Value);
    }

    /// <summary>The driver's interrupt handler: counts completion interrupts and wakes the thread sleeping on them.</summary>
    private sealed class InterruptCounter(Scheduler scheduler) : IDmaInterruptSink
    {
        private readonly SimWaitQueue _queue = new(scheduler, "bench dma irq");
        private long _completions;

        public void Raise(DmaInterrupt cause)
        {
            if (cause != DmaInterrupt.Completion)
                throw new InvalidOperationException($"Unexpected DMA interrupt {cause}.");
            Interlocked.Increment(ref _completions);
            _queue.WakeAll();
        }

        // May sleep. Spins (a pause loop) up to 20 µs first, as the engine's worker does before it sleeps and a blocking
        // Channel reader does inside Task.Wait, then sleeps on the wait queue the handler wakes; with poll, spins until
        // the interrupt.
        public void WaitFor(long count, bool poll)
        {
            long until = poll ? long.MaxValue : Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 50_000);
            while (Volatile.Read(ref _completions) < count && Stopwatch.GetTimestamp() < until)
                Thread.SpinWait(1);
            _queue.WaitUntil((this, count), static s => Volatile.Read(ref s.Item1._completions) >= s.count);
        }
    }
}
