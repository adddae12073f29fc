using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;
using static HmmEmu.Gpu.GpuRegisters;

namespace HmmEmu.Gpu.Model.Tests;

/// <summary>
/// A kernel, a PCI bus, a <see cref="GpuModel"/> in slot 0 and a tiny raw test driver that programs it only through
/// BAR0, interrupts and coherent memory: a command ring, a fault buffer, copy-engine rings, a fence page and
/// hand-built device page tables. <c>using var m = GpuTestMachine.Create(); m.Run(() => { m.Start(); ... });</c>
/// </summary>
internal sealed class GpuTestMachine : IPciDriver, IDisposable
{
    public const int CommandEntries = 64;
    public const int CopyEntries = 16;
    public const ulong Page = 4096;

    private readonly List<DmaCoherentBuffer> _tables = [];
    private readonly long[] _vectorCounts = new long[Vectors];
    private readonly DmaCoherentBuffer?[] _roots = new DmaCoherentBuffer?[Contexts];
    private PciDev? _dev;
    private PciBar? _bar;
    private uint _cmdProducer;
    private uint _ceProducer;
    private uint _ceConsumer;
    private int _nextFence;

    private GpuTestMachine(ulong seed, SchedulerMode mode, int faultEntries, GpuModelOptions? options)
    {
        Kernel = new HostKernel(KernelOptions.For(seed, mode) with { RamBytes = 64UL << 20 });
        Bus = new PciBus(Kernel);
        Model = new GpuModel(Kernel, options ?? new GpuModelOptions { VramBytes = 8UL << 20 });
        FaultEntries = faultEntries;
    }

    public HostKernel Kernel { get; }

    public PciBus Bus { get; }

    public GpuModel Model { get; }

    public Scheduler Scheduler => Kernel.Scheduler;

    public int FaultEntries { get; }

    public DmaCoherentBuffer CommandRing { get; private set; } = null!;

    public DmaCoherentBuffer FaultBuffer { get; private set; } = null!;

    public DmaCoherentBuffer Fences { get; private set; } = null!;

    public DmaCoherentBuffer CopySq { get; private set; } = null!;

    public DmaCoherentBuffer CopyCq { get; private set; } = null!;

    public PciDev Dev => _dev ?? throw new InvalidOperationException("not bound");

    public string Name => "gpu-raw-test";

    public IReadOnlyList<PciDeviceId> IdTable { get; } = [new PciDeviceId(GpuRegisters.VendorId, GpuRegisters.DeviceId)];

    public static GpuTestMachine Create(SchedulerMode mode = SchedulerMode.Deterministic, ulong seed = 1,
        int faultEntries = 32, GpuModelOptions? options = null) => new(seed, mode, faultEntries, options);

    public void Run(Action body) => Kernel.Run(body);

    /// <summary>Plugs the model and binds the raw driver (which programs and enables the device). Inside <see cref="Run"/>.</summary>
    public void Start()
    {
        Bus.Plug(0, Model);
        if (Bus.RegisterDriver(this) != 1)
            throw new InvalidOperationException("The raw GPU test driver did not bind.");
    }

    public long VectorCount(int vector) => Interlocked.Read(ref _vectorCounts[vector]);

    public Errno Probe(PciDev dev)
    {
        _dev = dev;
        _bar = dev.Bar(0);
        CommandRing = Alloc((ulong)(CommandEntries * GpuCommand.Size));
        FaultBuffer = Alloc((ulong)(FaultEntries * GpuFaultRecord.Size));
        Fences = Alloc(Page);
        CopySq = Alloc((ulong)(CopyEntries * DmaDescriptor.Size));
        CopyCq = Alloc((ulong)(CopyEntries * DmaCompletion.Size));
        for (int v = 0; v < Vectors; v++)
        {
            int vector = v;
            var err = dev.RequestIrq(v, _ => { Interlocked.Increment(ref _vectorCounts[vector]); return IrqReturn.Handled; }, $"gpu-test-{v}");
            if (err != Errno.Ok)
                return err;
            W32(MsixVectorControl(v), 0);
        }
        Program();
        return Errno.Ok;
    }

    public void Remove(PciDev dev) => W32(Control, 0);

    /// <summary>Writes the ring configuration and enables the device (rings restart at 0).</summary>
    public void Program()
    {
        W64(CmdBase, CommandRing.BusAddress);
        W32(CmdSize, CommandEntries);
        W64(FaultBase, FaultBuffer.BusAddress);
        W32(FaultSize, (uint)FaultEntries);
        W64(CeSqBase, CopySq.BusAddress);
        W32(CeSqSize, CopyEntries);
        W64(CeCqBase, CopyCq.BusAddress);
        W32(CeCqSize, CopyEntries);
        _cmdProducer = 0;
        _ceProducer = 0;
        _ceConsumer = 0;
        W32(Control, ControlEnable);
    }

    public DmaCoherentBuffer Alloc(ulong bytes)
    {
        var err = Dev.AllocCoherent(bytes, out var b);
        if (err != Errno.Ok)
            throw new InvalidOperationException($"coherent alloc of {bytes}: {err}");
        return b!;
    }

    // ---- MMIO

    public uint R32(ulong offset) => _bar!.Read32(offset);

    public ulong R64(ulong offset) => _bar!.Read64(offset);

    public void W32(ulong offset, uint value) => _bar!.Write32(offset, value);

    public void W64(ulong offset, ulong value) => _bar!.Write64(offset, value);

    public GpuContextState State(int ctx) => (GpuContextState)(R32(ContextBlock(ctx) + CtxStatus) & 3);

    public GpuContextError Error(int ctx) => (GpuContextError)((R32(ContextBlock(ctx) + CtxStatus) >> 8) & 0xFF);

    public ulong ErrorAddress(int ctx) => R64(ContextBlock(ctx) + CtxErrorAddress);

    public ulong Completed(int ctx) => R64(ContextBlock(ctx) + CtxCompleted);

    // ---- contexts and page tables

    /// <summary>Gives <paramref name="ctx"/> an empty root table and sets VALID.</summary>
    public void CreateContext(int ctx)
    {
        _roots[ctx] ??= NewTable();
        W64(ContextBlock(ctx) + CtxPtBase, DevicePte.Table(Aperture.System, _roots[ctx]!.BusAddress).Value);
        W32(ContextBlock(ctx) + CtxControl, CtxControlValid);
    }

    /// <summary>Maps the 4 KiB page <paramref name="va"/> of <paramref name="ctx"/> to <paramref name="address"/>.</summary>
    public void Map(int ctx, ulong va, Aperture aperture, ulong address, PtePermissions permissions)
    {
        var port = Model.SystemMemory;
        ulong table = _roots[ctx]!.BusAddress;
        for (int level = DevicePageTable.Levels; level >= 2; level--)
        {
            ulong slot = DevicePageTable.EntryAddress(table, level, va);
            port.TryReadUInt64(slot, out ulong raw);
            var e = new DevicePte(raw);
            if (!e.IsValid)
            {
                var t = NewTable();
                e = DevicePte.Table(Aperture.System, t.BusAddress);
                port.TryWriteUInt64(slot, e.Value);
            }
            table = e.Address;
        }
        port.TryWriteUInt64(DevicePageTable.EntryAddress(table, 1, va), DevicePte.Leaf(aperture, address, permissions).Value);
    }

    /// <summary>Maps [va, va + bytes) onto the contiguous [address, ...).</summary>
    public void MapRange(int ctx, ulong va, Aperture aperture, ulong address, ulong bytes, PtePermissions permissions)
    {
        for (ulong off = 0; off < bytes; off += Page)
            Map(ctx, va + off, aperture, address + off, permissions);
    }

    private DmaCoherentBuffer NewTable()
    {
        var t = Alloc(Page);
        _tables.Add(t);
        return t;
    }

    // ---- commands and fences

    /// <summary>A fresh fence slot (zeroed) and its bus address.</summary>
    public ulong NewFence()
    {
        int slot = _nextFence++ % 512;
        Fences.Span.Slice(slot * 8, 8).Clear();
        return Fences.BusAddress + ((ulong)slot * 8);
    }

    public ulong ReadFence(ulong address) =>
        BitConverter.ToUInt64(Fences.Span.Slice((int)(address - Fences.BusAddress), 8));

    /// <summary>Writes <paramref name="cmd"/> at the producer index and rings CMD_TAIL.</summary>
    public void Submit(in GpuCommand cmd)
    {
        WriteEntry(cmd);
        W32(CmdTail, _cmdProducer);
    }

    /// <summary>Writes <paramref name="cmd"/> at the producer index without ringing the doorbell.</summary>
    public void WriteEntry(in GpuCommand cmd)
    {
        uint index = _cmdProducer % CommandEntries;
        cmd.Write(CommandRing.Span.Slice((int)index * GpuCommand.Size, GpuCommand.Size));
        _cmdProducer = (_cmdProducer + 1) % (2 * CommandEntries);
    }

    public Span<byte> LastEntry() =>
        CommandRing.Span.Slice((int)(((_cmdProducer + (2 * CommandEntries) - 1) % CommandEntries) * GpuCommand.Size), GpuCommand.Size);

    public void RingCommandDoorbell() => W32(CmdTail, _cmdProducer);

    /// <summary>Launches a kernel and returns its fence address (the fence value is 0xF00D).</summary>
    public ulong Launch(int ctx, GpuKernel kernel, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, GpuCommandFlags flags = GpuCommandFlags.None)
    {
        ulong fence = NewFence();
        Submit(GpuCommand.Launch((ushort)ctx, kernel, fence, 0xF00D, flags, a0, a1, a2, a3));
        return fence;
    }

    public void WaitFence(ulong fence, string what) => WaitFor(() => ReadFence(fence) != 0, what);

    /// <summary>Polls (sleeping in virtual time) until <paramref name="condition"/> holds. May sleep.</summary>
    public void WaitFor(Func<bool> condition, string what)
    {
        for (int i = 0; !condition(); i++)
        {
            if (i > 2_000_000)
                throw new TimeoutException($"Gave up waiting for {what}.");
            Scheduler.Sleep(500);
        }
    }

    /// <summary>Sleeps a while in virtual time (lets the device run).</summary>
    public void Idle(ulong ns = 200_000) => Scheduler.Sleep(ns);

    // ---- fault buffer

    public uint FaultPut => R32(GpuRegisters.FaultPut);

    public GpuFaultRecord FaultRecord(uint index) =>
        GpuFaultRecord.Read(FaultBuffer.Span.Slice((int)(index % (uint)FaultEntries) * GpuFaultRecord.Size, GpuFaultRecord.Size));

    /// <summary>Consumes every record up to FAULT_PUT.</summary>
    public void DrainFaults() => W32(FaultGet, FaultPut);

    // ---- copy engine

    public DmaCompletion Copy(ulong src, ulong dst, uint length, ushort ctx = 0)
    {
        var d = DmaDescriptor.Copy(src, dst, length, cookie: _ceProducer + 1UL, DmaFlags.InterruptOnCompletion, ctx);
        d.Write(CopySq.Span.Slice((int)(_ceProducer % CopyEntries) * DmaDescriptor.Size, DmaDescriptor.Size));
        _ceProducer = (_ceProducer + 1) % (2 * CopyEntries);
        W32(CeSqTail, _ceProducer);
        WaitFor(() => R32(CeCqTail) != _ceConsumer, "a copy completion");
        var c = DmaCompletion.Read(CopyCq.Span.Slice((int)(_ceConsumer % CopyEntries) * DmaCompletion.Size, DmaCompletion.Size));
        _ceConsumer = (_ceConsumer + 1) % (2 * CopyEntries);
        W32(CeCqHead, _ceConsumer);
        return c;
    }

    public void Dispose()
    {
        Bus.Dispose();
        Model.Dispose();
        Kernel.Dispose();
    }
}
