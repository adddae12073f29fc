using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Translation;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Dma;

/// <summary>
/// A kernel, a DMA engine with configured rings and a minimal "driver" for tests:
/// <c>using var rig = DmaRig.Create();</c>, then <c>rig.Run(() => { rig.Submit(...); rig.WaitForCompletions(1); })</c>.
/// </summary>
internal sealed class DmaRig : IDisposable
{
    public const ulong Page = 4096;

    private uint _sqProducer;
    private uint _cqConsumer;

    private DmaRig(ulong seed, SchedulerMode mode, Func<SystemMemoryPort, ITranslator>? translator, IMemoryPort? vram,
        uint sqCount, uint cqCount, DmaEngineOptions? options)
    {
        Kernel = new HostKernel(KernelOptions.For(seed, mode) with { RamBytes = 16UL << 20 });
        Memory = new SystemMemoryPort(Kernel.Memory);
        Translator = translator?.Invoke(Memory) ?? new BusAddressTranslator(Memory);
        SqCount = sqCount;
        CqCount = cqCount;
        SqBase = Alloc(1);
        CqBase = Alloc(1);
        Engine = new DmaEngine(Kernel.Scheduler, "test", Translator, Memory, vram, Interrupts, options);
        if (Engine.ConfigureSubmissionRing(SqBase, sqCount) != HmmEmu.Hardware.Rings.RingError.None
            || Engine.ConfigureCompletionRing(CqBase, cqCount) != HmmEmu.Hardware.Rings.RingError.None)
        {
            throw new InvalidOperationException("Rig rings failed to configure.");
        }
    }

    public HostKernel Kernel { get; }

    public SystemMemoryPort Memory { get; }

    public ITranslator Translator { get; }

    public DmaEngine Engine { get; }

    public InterruptRecorder Interrupts { get; } = new();

    public ulong SqBase { get; }

    public ulong CqBase { get; }

    public uint SqCount { get; }

    public uint CqCount { get; }

    public static DmaRig Create(
        ulong seed = 1,
        SchedulerMode mode = SchedulerMode.Deterministic,
        Func<SystemMemoryPort, ITranslator>? translator = null,
        IMemoryPort? vram = null,
        uint sqCount = 16,
        uint cqCount = 16,
        DmaEngineOptions? options = null) =>
        new(seed, mode, translator, vram, sqCount, cqCount, options);

    public void Run(Action body) => Kernel.Run(body);

    /// <summary>Allocates <paramref name="pages"/> (a power of two) contiguous frames; returns their bus address.</summary>
    public ulong Alloc(int pages)
    {
        int order = System.Numerics.BitOperations.Log2((uint)pages);
        if (Kernel.Memory.AllocContiguous(order, Gfp.Kernel | Gfp.Zero, out ulong pfn) != Errno.Ok)
            throw new InvalidOperationException($"Could not allocate {pages} pages.");
        return pfn << PhysicalMemory.PageShift;
    }

    /// <summary>Writes the descriptor at the driver's producer slot and rings the doorbell; returns its index.</summary>
    public uint Submit(DmaDescriptor descriptor, bool ring = true)
    {
        uint index = _sqProducer;
        Span<byte> entry = stackalloc byte[DmaDescriptor.Size];
        descriptor.Write(entry);
        ulong slot = SqBase + ((index & (SqCount - 1)) * (ulong)DmaDescriptor.Size);
        if (!Memory.TryWrite(slot, entry))
            throw new InvalidOperationException("Could not write the descriptor.");
        _sqProducer = (_sqProducer + 1) & ((2 * SqCount) - 1);
        if (ring)
            Engine.Doorbell(_sqProducer);
        return index;
    }

    /// <summary>Rings the doorbell with the driver's producer index.</summary>
    public void RingDoorbell() => Engine.Doorbell(_sqProducer);

    /// <summary>Polls (sleeping in virtual time) until <paramref name="condition"/> holds. May sleep.</summary>
    public void WaitFor(Func<bool> condition, string what)
    {
        for (int i = 0; !condition(); i++)
        {
            if (i > 2_000_000)
                throw new TimeoutException($"Gave up waiting for {what}.");
            Kernel.Scheduler.Sleep(500);
        }
    }

    /// <summary>Records posted and not yet consumed by the driver.</summary>
    public int Available => (int)((Engine.Completion.Producer - _cqConsumer) & ((2 * CqCount) - 1));

    /// <summary>Waits until <paramref name="count"/> unconsumed records are available, then consumes and returns them. May sleep.</summary>
    public List<DmaCompletion> WaitForCompletions(int count)
    {
        WaitFor(() => Available >= count, $"{count} completions");
        return TakeCompletions();
    }

    /// <summary>Consumes and returns every posted record.</summary>
    public List<DmaCompletion> TakeCompletions()
    {
        var list = new List<DmaCompletion>();
        Span<byte> record = stackalloc byte[DmaCompletion.Size];
        uint producer = Engine.Completion.Producer;
        while (_cqConsumer != producer)
        {
            ulong slot = CqBase + ((_cqConsumer & (CqCount - 1)) * (ulong)DmaCompletion.Size);
            if (!Memory.TryRead(slot, record))
                throw new InvalidOperationException("Could not read a completion record.");
            list.Add(DmaCompletion.Read(record));
            _cqConsumer = (_cqConsumer + 1) & ((2 * CqCount) - 1);
        }
        Engine.CompletionConsumed(_cqConsumer);
        return list;
    }

    public void Fill(ulong address, int length, Func<int, byte> value)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
            bytes[i] = value(i);
        if (!Memory.TryWrite(address, bytes))
            throw new InvalidOperationException("Could not fill memory.");
    }

    public byte[] Read(ulong address, int length)
    {
        var bytes = new byte[length];
        if (!Memory.TryRead(address, bytes))
            throw new InvalidOperationException("Could not read memory.");
        return bytes;
    }

    public void Dispose()
    {
        Engine.Dispose();
        Kernel.Dispose();
    }
}
