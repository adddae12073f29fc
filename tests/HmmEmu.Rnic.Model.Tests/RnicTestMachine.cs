using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;

namespace HmmEmu.Rnic.Model.Tests;

/// <summary>
/// A kernel, a PCI bus, two <see cref="RnicModel"/>s (port addresses 1 and 2) joined by an <see cref="RnicLink"/>, and
/// a tiny raw test driver per NIC (<see cref="RawNic"/>) that programs it only through BAR0, BAR2, interrupts and
/// coherent memory. <c>using var m = RnicTestMachine.Create(); m.Run(() => { m.Start(); ... });</c>
/// </summary>
internal sealed class RnicTestMachine : IPciDriver, IDisposable
{
    private readonly List<RawNic> _nics = [];

    private RnicTestMachine(ulong seed, SchedulerMode mode, RnicLinkOptions? link, RnicModelOptions? options)
    {
        Kernel = new HostKernel(KernelOptions.For(seed, mode) with { RamBytes = 256UL << 20 });
        Bus = new PciBus(Kernel);
        var o = options ?? RnicModelOptions.Default;
        A = new RnicModel(Kernel, o with { PortAddress = 1 });
        B = new RnicModel(Kernel, o with { PortAddress = 2 });
        Link = new RnicLink(Kernel.Scheduler, A, B, link);
        A.Connect(Link);
        B.Connect(Link);
    }

    public HostKernel Kernel { get; }

    public PciBus Bus { get; }

    public RnicModel A { get; }

    public RnicModel B { get; }

    public RnicLink Link { get; }

    public Scheduler Scheduler => Kernel.Scheduler;

    /// <summary>The raw driver of NIC A (port 1).</summary>
    public RawNic NicA => _nics[0];

    /// <summary>The raw driver of NIC B (port 2).</summary>
    public RawNic NicB => _nics[1];

    public string Name => "rnic-raw-test";

    public IReadOnlyList<PciDeviceId> IdTable { get; } = [new PciDeviceId(RnicRegisters.VendorId, RnicRegisters.DeviceId)];

    public static RnicTestMachine Create(SchedulerMode mode = SchedulerMode.Deterministic, ulong seed = 1,
        RnicLinkOptions? link = null, RnicModelOptions? options = null) => new(seed, mode, link, options);

    public void Run(Action body) => Kernel.Run(body);

    /// <summary>Plugs both NICs and binds the raw drivers (which program and enable them). Inside <see cref="Run"/>.</summary>
    public void Start()
    {
        Bus.Plug(0, A);
        Bus.Plug(1, B);
        if (Bus.RegisterDriver(this) != 2)
            throw new InvalidOperationException("The raw RNIC test driver did not bind to both NICs.");
    }

    public Errno Probe(PciDev dev)
    {
        var nic = new RawNic(this, dev);
        var err = nic.Probe();
        if (err == Errno.Ok)
            _nics.Add(nic);
        return err;
    }

    public void Remove(PciDev dev) => _nics.Find(n => n.Dev == dev)?.Bar0.Write32(RnicRegisters.Control, 0);

    /// <summary>Polls (sleeping in virtual time) until <paramref name="condition"/> holds. May sleep.</summary>
    public void WaitFor(Func<bool> condition, string what, int limit = 2_000_000)
    {
        for (int i = 0; !condition(); i++)
        {
            if (i > limit)
                throw new TimeoutException($"Gave up waiting for {what}.");
            Scheduler.Sleep(500);
        }
    }

    /// <summary>
    /// Creates a connected RC QP pair: each side has a PD, one CQ for both queues, and QPs brought to RTS with
    /// <paramref name="configure"/> applied to both RTR/RTS attribute sets.
    /// </summary>
    public (RawQp A, RawQp B) ConnectedPair(byte timeout = 10, byte retry = 7, byte rnrRetry = 7, byte minRnrTimer = 1,
        RnicAccessFlags access = RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead | RnicAccessFlags.RemoteAtomic,
        uint cqEntries = 256, uint wqEntries = 64, RnicMtu mtu = RnicMtu.Mtu4096)
    {
        var pdA = NicA.AllocPd();
        var pdB = NicB.AllocPd();
        var qa = NicA.CreateQp(pdA, cqEntries, wqEntries);
        var qb = NicB.CreateQp(pdB, cqEntries, wqEntries);
        NicA.BringUp(qa, qb.Qpn, B.Address, 100, 200, timeout, retry, rnrRetry, minRnrTimer, access, mtu);
        NicB.BringUp(qb, qa.Qpn, A.Address, 200, 100, timeout, retry, rnrRetry, minRnrTimer, access, mtu);
        return (qa, qb);
    }

    public void Dispose()
    {
        Bus.Dispose();
        Link.Dispose();
        A.Dispose();
        B.Dispose();
        Kernel.Dispose();
    }
}
