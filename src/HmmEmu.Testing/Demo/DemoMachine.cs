using System.Runtime.InteropServices;
using HmmEmu.Gpu.Driver;
using HmmEmu.Gpu.Model;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Vm;
using HmmEmu.Rnic;
using HmmEmu.Rnic.Driver;
using HmmEmu.Rnic.Model;

namespace HmmEmu.Testing.Demo;

/// <summary>
/// The demo's machine: a kernel with <see cref="RamBytes"/> of RAM, a PCI bus with two RDMA NICs (slots 0 and 1, ports 1
/// and 2) joined by a link and a GPU with <see cref="VramBytes"/> of VRAM (slot 2), their drivers, and two processes:
/// A (node-a: a GPU context and a verbs context on NIC 1) and B (node-b: a verbs context on NIC 2). The same assembly as
/// the tests' RnicMachine with a GPU, here in HmmEmu.Testing so the CLI can boot it.
/// </summary>
public sealed class DemoMachine : IDisposable
{
    /// <summary>System RAM.</summary>
    public const ulong RamBytes = 128UL << 20;

    /// <summary>GPU VRAM: small, so that the oversubscription workload is quick.</summary>
    public const ulong VramBytes = 4UL << 20;

    /// <summary>Access rights of the demo's memory regions (plus <see cref="RnicAccessFlags.OnDemand"/>).</summary>
    public const RnicAccessFlags Remote = RnicAccessFlags.LocalWrite | RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead;

    private readonly DemoTraceCounters _trace = new();

    /// <summary>Builds the machine (nothing is plugged until <see cref="Run"/>). Runs on the host thread.</summary>
    public DemoMachine(DemoOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Kernel = new HostKernel(KernelOptions.For(options.Seed, options.Mode) with { RamBytes = RamBytes });
        Kernel.Trace.AddListener(_trace);
        Bus = new PciBus(Kernel);
        NicA = new RnicModel(Kernel, RnicModelOptions.Default with { PortAddress = 1 });
        NicB = new RnicModel(Kernel, RnicModelOptions.Default with { PortAddress = 2 });
        Link = new RnicLink(Kernel.Scheduler, NicA, NicB);
        NicA.Connect(Link);
        NicB.Connect(Link);
        RnicDriver = new RnicDriver(Kernel);
        GpuModel = new GpuModel(Kernel, GpuModelOptions.Default with { VramBytes = VramBytes });
        GpuDriver = new GpuDriver(Kernel);
    }

    /// <summary>The simulated kernel.</summary>
    public HostKernel Kernel { get; }

    /// <summary>The PCI bus.</summary>
    public PciBus Bus { get; }

    /// <summary>NIC 1 (process A's).</summary>
    public RnicModel NicA { get; }

    /// <summary>NIC 2 (process B's).</summary>
    public RnicModel NicB { get; }

    /// <summary>The link between the NICs.</summary>
    public RnicLink Link { get; }

    /// <summary>The RNIC driver (bound to both NICs).</summary>
    public RnicDriver RnicDriver { get; }

    /// <summary>The GPU model.</summary>
    public GpuModel GpuModel { get; }

    /// <summary>The GPU driver.</summary>
    public GpuDriver GpuDriver { get; }

    /// <summary>The bound GPU.</summary>
    public GpuDevice Gpu => GpuDriver.Devices[0];

    /// <summary>Process A (valid inside <see cref="Run"/>).</summary>
    public Process A { get; private set; } = null!;

    /// <summary>Process B (valid inside <see cref="Run"/>).</summary>
    public Process B { get; private set; } = null!;

    /// <summary>A's GPU context.</summary>
    public GpuContext GpuContext { get; private set; } = null!;

    /// <summary>A's verbs context (NIC 1).</summary>
    public IbvContext Ca { get; private set; } = null!;

    /// <summary>B's verbs context (NIC 2).</summary>
    public IbvContext Cb { get; private set; } = null!;

    /// <summary>
    /// Boots (plug, bind), creates the processes and their contexts, runs <paramref name="body"/> on a user thread of A,
    /// closes everything, unbinds, and checks the kernel raised no warning (lockdep included).
    /// </summary>
    public void Run(Action<DemoMachine> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        Kernel.Run(() =>
        {
            Bus.Plug(0, NicA);
            Bus.Plug(1, NicB);
            if (Bus.RegisterDriver(RnicDriver) != 2)
                throw new InvalidOperationException("The RNIC driver did not bind to both NICs.");
            Bus.Plug(2, GpuModel);
            if (Bus.RegisterDriver(GpuDriver) != 1)
                throw new InvalidOperationException("The GPU driver did not bind.");
            A = Kernel.CreateProcess("node-a");
            B = Kernel.CreateProcess("node-b");
            Check(Ibv.OpenDevice(RnicDriver.Devices[0], A, out var ca), "ibv_open_device(NIC 1)");
            Check(Ibv.OpenDevice(RnicDriver.Devices[1], B, out var cb), "ibv_open_device(NIC 2)");
            Ca = ca!;
            Cb = cb!;
            A.StartThread("main", () =>
            {
                GpuContext = Gpu.Open(A);
                try
                {
                    body(this);
                }
                finally
                {
                    GpuContext.Close();
                }
            }).Join();
            Ca.Close();
            Cb.Close();
            Kernel.SystemWorkQueue.Flush();
            Bus.UnregisterDriver(RnicDriver);
            Bus.UnregisterDriver(GpuDriver);
        });
        Kernel.AssertNoWarnings();   // a kernel WARN (a driver broke a kernel rule) during the demo fails it; suppresses nothing
    }

    /// <summary>Every counter the report uses, now.</summary>
    public DemoCounters Snapshot()
    {
        var gpu = GpuContext.Stats;
        var nicA = NicA.Stats;
        var nicB = NicB.Stats;
        var tlbG = GpuModel.ComputeMmu.Stats;
        var tlbA = NicA.Translation.Stats;
        var tlbB = NicB.Translation.Stats;
        return new DemoCounters(Kernel.Clock.Now, gpu.Faults, gpu.Batches,
            nicA.RequesterFaults + nicA.ResponderFaults + nicB.RequesterFaults + nicB.ResponderFaults,
            _trace.CpuFaults, Gpu.PagesToVram, Gpu.PagesToSystem, Gpu.PagesEvicted,
            tlbG.Hits + tlbA.Hits + tlbB.Hits, tlbG.Misses + tlbA.Misses + tlbB.Misses, _trace.Callbacks,
            _trace.ComputeNs, _trace.FaultNs, _trace.TransferNs);
    }

    /// <summary>A connected RC pair: a PD, a CQ and a QP on each side, both QPs in RTS.</summary>
    public (IbvPd PdA, IbvPd PdB, IbvCq CqA, IbvQp QpA) Connect()
    {
        Check(Ca.AllocPd(out var pdA), "ibv_alloc_pd(A)");
        Check(Cb.AllocPd(out var pdB), "ibv_alloc_pd(B)");
        Check(Ca.CreateCq(64, out var cqA), "ibv_create_cq(A)");
        Check(Cb.CreateCq(64, out var cqB), "ibv_create_cq(B)");
        Check(Ca.CreateQp(pdA!, new IbvQpInitAttr(cqA!, cqA!, 32, 32), out var qpA), "ibv_create_qp(A)");
        Check(Cb.CreateQp(pdB!, new IbvQpInitAttr(cqB!, cqB!, 32, 32), out var qpB), "ibv_create_qp(B)");
        BringUp(Ca, qpA!, qpB!.QpNum, Cb.PortAddress, sqPsn: 1000, rqPsn: 5000);
        BringUp(Cb, qpB, qpA!.QpNum, Ca.PortAddress, sqPsn: 5000, rqPsn: 1000);
        return (pdA!, pdB!, cqA!, qpA);
    }

    /// <summary>Polls <paramref name="cq"/> of A (sleeping in virtual time between polls) until a completion arrives.</summary>
    public RnicCqe WaitCompletion(IbvCq cq)
    {
        Span<RnicCqe> wc = stackalloc RnicCqe[1];
        for (int i = 0; Ca.PollCq(cq, wc) == 0; i++)
        {
            if (i > 4_000_000)
                throw new TimeoutException($"No completion on CQ {cq.Number}.");
            Kernel.Scheduler.Sleep(1_000);
        }
        return wc[0];
    }

    /// <summary>An anonymous private read-write mapping of <paramref name="bytes"/> (rounded up to pages) in <paramref name="p"/>.</summary>
    public static ulong Map(Process p, ulong bytes) =>
        p.Map((bytes + 4095) & ~4095UL, Prot.ReadWrite, MapFlags.PrivateAnonymous);

    /// <summary>CPU store of <paramref name="values"/> at <paramref name="address"/> in <paramref name="p"/>.</summary>
    public static void Write<T>(Process p, ulong address, ReadOnlySpan<T> values) where T : unmanaged =>
        p.WriteBytes(address, MemoryMarshal.AsBytes(values));

    /// <summary>CPU load of <paramref name="count"/> elements at <paramref name="address"/> in <paramref name="p"/>.</summary>
    public static T[] Read<T>(Process p, ulong address, int count) where T : unmanaged
    {
        var values = new T[count];
        p.ReadBytes(address, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    /// <summary>Pages of [<paramref name="address"/>, +<paramref name="bytes"/>) whose CPU entry points at device-private memory.</summary>
    public static int DevicePrivatePages(Process p, ulong address, ulong bytes)
    {
        ArgumentNullException.ThrowIfNull(p);
        int n = 0;
        for (ulong va = address; va < address + bytes; va += 4096)
        {
            if (p.Mm.GetPte(va).IsDevicePrivate)
                n++;
        }
        return n;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Bus.Dispose();
        GpuModel.Dispose();
        Link.Dispose();
        NicA.Dispose();
        NicB.Dispose();
        Kernel.Dispose();
    }

    private static void Check(Errno err, string what)
    {
        if (err != Errno.Ok)
            throw new InvalidOperationException($"{what} failed: {err}");
    }

    // RESET → INIT → RTR → RTS with the attributes an RC connection needs (as RnicTarget and the tests' RnicMachine do).
    private static void BringUp(IbvContext c, IbvQp qp, uint destQpn, uint destPort, uint sqPsn, uint rqPsn)
    {
        var a = new RnicQpAttributes(State: RnicQpState.Init, AccessFlags: RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead,
            Port: 1, PathMtu: RnicMtu.Mtu4096, Av: destPort, RqPsn: rqPsn, SqPsn: sqPsn, MinRnrTimer: 1, MaxDestRdAtomic: 16,
            MaxRdAtomic: 16, DestQpn: destQpn, Timeout: 12, RetryCnt: 7, RnrRetry: RnicQpAttributes.RnrRetryInfinite);
        Check(c.ModifyQp(qp, a, RnicQpAttrMask.State | RnicQpAttrMask.AccessFlags | RnicQpAttrMask.PkeyIndex | RnicQpAttrMask.Port), "INIT");
        Check(c.ModifyQp(qp, a with { State = RnicQpState.Rtr }, RnicQpAttrMask.State | RnicQpAttrMask.Av | RnicQpAttrMask.PathMtu |
            RnicQpAttrMask.RqPsn | RnicQpAttrMask.MinRnrTimer | RnicQpAttrMask.MaxDestRdAtomic | RnicQpAttrMask.DestQpn), "RTR");
        Check(c.ModifyQp(qp, a with { State = RnicQpState.Rts }, RnicQpAttrMask.State | RnicQpAttrMask.Timeout | RnicQpAttrMask.RetryCnt |
            RnicQpAttrMask.RnrRetry | RnicQpAttrMask.MaxQpRdAtomic | RnicQpAttrMask.SqPsn), "RTS");
    }
}
