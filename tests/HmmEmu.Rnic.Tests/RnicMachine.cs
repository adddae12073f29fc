using System.Runtime.InteropServices;
using HmmEmu.Gpu.Driver;
using HmmEmu.Gpu.Model;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Vm;
using HmmEmu.Rnic.Driver;
using HmmEmu.Rnic.Model;
using HmmEmu.Simulation;

namespace HmmEmu.Rnic.Tests;

/// <summary>
/// Two nodes in one simulated machine: a kernel, a PCI bus, two <see cref="RnicModel"/>s (ports 1 and 2) joined by an
/// <see cref="RnicLink"/>, the <see cref="RnicDriver"/> bound to both, and two processes, each with a verbs context
/// on its own NIC. <c>using var m = RnicMachine.Create(); m.Run(m => { ... });</c>
/// </summary>
internal sealed class RnicMachine : IDisposable
{
    private RnicMachine(ulong seed, SchedulerMode mode, RnicLinkOptions? link, RnicDriverOptions? driver, ulong ramBytes, bool withGpu)
    {
        Kernel = new HostKernel(KernelOptions.For(seed, mode) with { RamBytes = ramBytes });
        Bus = new PciBus(Kernel);
        NicA = new RnicModel(Kernel, RnicModelOptions.Default with { PortAddress = 1 });
        NicB = new RnicModel(Kernel, RnicModelOptions.Default with { PortAddress = 2 });
        Link = new RnicLink(Kernel.Scheduler, NicA, NicB, link);
        NicA.Connect(Link);
        NicB.Connect(Link);
        Driver = new RnicDriver(Kernel, driver);
        if (withGpu)
        {
            Gpu = new GpuModel(Kernel, GpuModelOptions.Default with { VramBytes = 4UL << 20 });
            GpuDriver = new GpuDriver(Kernel);
        }
    }

    /// <summary>A GPU in slot 2 (only when created with one), for the cross-device scenario.</summary>
    public GpuModel? Gpu { get; }

    /// <summary>The GPU's driver (only when created with a GPU).</summary>
    public GpuDriver? GpuDriver { get; }

    public HostKernel Kernel { get; }

    public PciBus Bus { get; }

    public RnicModel NicA { get; }

    public RnicModel NicB { get; }

    public RnicLink Link { get; }

    public RnicDriver Driver { get; }

    public Process A { get; private set; } = null!;

    public Process B { get; private set; } = null!;

    public IbvContext Ca { get; private set; } = null!;

    public IbvContext Cb { get; private set; } = null!;

    public Scheduler Scheduler => Kernel.Scheduler;

    public static RnicMachine Create(SchedulerMode mode = SchedulerMode.Deterministic, ulong seed = 1,
        RnicLinkOptions? link = null, RnicDriverOptions? driver = null, ulong ramBytes = 256UL << 20, bool withGpu = false) =>
        new(seed, mode, link, driver, ramBytes, withGpu);

    /// <summary>
    /// Boots (plug, bind), creates processes A and B with a verbs context each (A on NIC 1, B on NIC 2), runs
    /// <paramref name="body"/> on a thread of A, closes the contexts, unbinds, and checks that the kernel raised no
    /// warning (lockdep included).
    /// </summary>
    public void Run(Action<RnicMachine> body)
    {
        Kernel.Run(() =>
        {
            Bus.Plug(0, NicA);
            Bus.Plug(1, NicB);
            if (Bus.RegisterDriver(Driver) != 2)
                throw new InvalidOperationException("The RNIC driver did not bind to both NICs.");
            if (Gpu is not null)
            {
                Bus.Plug(2, Gpu);
                if (Bus.RegisterDriver(GpuDriver!) != 1)
                    throw new InvalidOperationException("The GPU driver did not bind.");
            }
            A = Kernel.CreateProcess("node-a");
            B = Kernel.CreateProcess("node-b");
            Check(Ibv.OpenDevice(Driver.Devices[0], A, out var ca));
            Check(Ibv.OpenDevice(Driver.Devices[1], B, out var cb));
            Ca = ca!;
            Cb = cb!;
            A.StartThread("main", () => body(this)).Join();
            Ca.Close();
            Cb.Close();
            Kernel.SystemWorkQueue.Flush();
            Bus.UnregisterDriver(Driver);
            if (GpuDriver is not null)
                Bus.UnregisterDriver(GpuDriver);
        });
        Kernel.AssertNoWarnings();
    }

    public static void Check(Errno err, string what = "verb")
    {
        if (err != Errno.Ok)
            throw new InvalidOperationException($"{what} failed: {err}");
    }

    public static ulong Map(Process p, ulong bytes) => p.Map((bytes + 4095) & ~4095UL, Prot.ReadWrite, MapFlags.PrivateAnonymous);

    /// <summary>A connected RC pair: a PD, one CQ and a QP per side, both in RTS.</summary>
    public Pair Connect(byte timeout = 12, byte retry = 7, byte rnrRetry = RnicQpAttributes.RnrRetryInfinite, int depth = 128,
        RnicAccessFlags qpAccess = RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead | RnicAccessFlags.RemoteAtomic)
    {
        Check(Ca.AllocPd(out var pdA));
        Check(Cb.AllocPd(out var pdB));
        Check(Ca.CreateCq(2 * depth, out var cqA));
        Check(Cb.CreateCq(2 * depth, out var cqB));
        Check(Ca.CreateQp(pdA!, new IbvQpInitAttr(cqA!, cqA!, depth, depth), out var qpA));
        Check(Cb.CreateQp(pdB!, new IbvQpInitAttr(cqB!, cqB!, depth, depth), out var qpB));
        BringUp(Ca, qpA!, qpB!.QpNum, Cb.PortAddress, 1000, 5000, timeout, retry, rnrRetry, qpAccess);
        BringUp(Cb, qpB, qpA!.QpNum, Ca.PortAddress, 5000, 1000, timeout, retry, rnrRetry, qpAccess);
        return new Pair(pdA!, pdB!, cqA!, cqB!, qpA, qpB);
    }

    public static void BringUp(IbvContext c, IbvQp qp, uint destQpn, uint destPort, uint sqPsn, uint rqPsn, byte timeout,
        byte retry, byte rnrRetry, RnicAccessFlags access)
    {
        var a = new RnicQpAttributes(State: RnicQpState.Init, AccessFlags: access, Port: 1, PathMtu: RnicMtu.Mtu4096, Av: destPort,
            RqPsn: rqPsn, SqPsn: sqPsn, MinRnrTimer: 1, MaxDestRdAtomic: 16, MaxRdAtomic: 16, DestQpn: destQpn,
            Timeout: timeout, RetryCnt: retry, RnrRetry: rnrRetry);
        Check(c.ModifyQp(qp, a, RnicQpAttrMask.State | RnicQpAttrMask.AccessFlags | RnicQpAttrMask.PkeyIndex | RnicQpAttrMask.Port), "INIT");
        Check(c.ModifyQp(qp, a with { State = RnicQpState.Rtr }, RnicQpAttrMask.State | RnicQpAttrMask.Av | RnicQpAttrMask.PathMtu |
            RnicQpAttrMask.RqPsn | RnicQpAttrMask.MinRnrTimer | RnicQpAttrMask.MaxDestRdAtomic | RnicQpAttrMask.DestQpn), "RTR");
        Check(c.ModifyQp(qp, a with { State = RnicQpState.Rts }, RnicQpAttrMask.State | RnicQpAttrMask.Timeout | RnicQpAttrMask.RetryCnt |
            RnicQpAttrMask.RnrRetry | RnicQpAttrMask.MaxQpRdAtomic | RnicQpAttrMask.SqPsn), "RTS");
    }

    /// <summary>Polls <paramref name="cq"/> (sleeping in virtual time between polls) until a completion arrives.</summary>
    public RnicCqe WaitCompletion(IbvContext c, IbvCq cq, int limit = 4_000_000)
    {
        Span<RnicCqe> wc = stackalloc RnicCqe[1];
        for (int i = 0; c.PollCq(cq, wc) == 0; i++)
        {
            if (i > limit)
                throw new TimeoutException($"No completion on CQ {cq.Number}.");
            Scheduler.Sleep(1_000);
        }
        return wc[0];
    }

    public static void Fill(Process p, ulong address, int bytes, int seed)
    {
        var data = new byte[bytes];
        for (int i = 0; i < bytes; i++)
            data[i] = (byte)((i * 7) + seed + (i >> 12));
        p.WriteBytes(address, data);
    }

    public static byte[] Read(Process p, ulong address, int bytes)
    {
        var data = new byte[bytes];
        p.ReadBytes(address, data);
        return data;
    }

    public static ulong ReadU64(Process p, ulong address)
    {
        var v = new ulong[1];
        p.ReadBytes(address, MemoryMarshal.AsBytes(v.AsSpan()));
        return v[0];
    }

    public void Dispose()
    {
        Bus.Dispose();
        Gpu?.Dispose();
        Link.Dispose();
        NicA.Dispose();
        NicB.Dispose();
        Kernel.Dispose();
    }
}

/// <summary>A connected QP pair and its objects.</summary>
internal sealed record Pair(IbvPd PdA, IbvPd PdB, IbvCq CqA, IbvCq CqB, IbvQp QpA, IbvQp QpB);
