using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Vm;
using HmmEmu.Rnic;
using HmmEmu.Rnic.Driver;
using HmmEmu.Rnic.Model;
using HmmEmu.Simulation;

namespace HmmEmu.Benchmarks.Rnic;

/// <summary>
/// Two NICs in one threaded-mode machine: a kernel (lock checker off, as in the other benchmarks), a PCI bus, two
/// <see cref="RnicModel"/>s (ports 1 and 2) joined by an <see cref="RnicLink"/> with the default options (100 Gb/s,
/// 1 µs), the <see cref="RnicDriver"/> bound to both, processes A and B with a verbs context each (A on NIC 1, B on
/// NIC 2), and a connected RC QP pair in RTS. The machine boots once per <c>GlobalSetup</c>; the benchmark's own (host)
/// thread then calls the verbs directly, as <c>GpuBenchMachine</c> does with its context: in threaded mode the
/// control verbs' waits are monitor waits and the data-path verbs only touch the rings and the doorbell page, so no
/// simulated thread is needed (a simulated thread spawned per operation measured slower: docs/benchmarks.md (g)).
/// </summary>
internal sealed class RnicBenchMachine : IDisposable
{
    /// <summary>Remote write and read on the MR, and the local write that remote write requires.</summary>
    public const RnicAccessFlags RemoteAccess = RnicAccessFlags.LocalWrite | RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead;

    /// <summary>The local ACK timeout code the QPs get by default: 4.096 µs · 2^14 ≈ 67 ms of virtual time.</summary>
    public const byte DefaultAckTimeout = 14;

    private const byte Retry = 7;
    private const byte RnrRetry = RnicQpAttributes.RnrRetryInfinite;

    private readonly RnicCqe[] _wc = new RnicCqe[1];

    /// <summary>
    /// Boots the machine and connects a QP pair whose SQs and RQs hold <paramref name="queueDepth"/> WQEs, with local
    /// ACK timeout code <paramref name="ackTimeout"/> (0: none); the link has <paramref name="link"/>'s options (the
    /// defaults if null).
    /// </summary>
    public RnicBenchMachine(ulong ramBytes, int queueDepth = 128, byte ackTimeout = DefaultAckTimeout, RnicLinkOptions? link = null)
    {
        Kernel = new HostKernel(KernelOptions.For(1, SchedulerMode.Threaded) with { Lockdep = false, RamBytes = ramBytes });
        Bus = new PciBus(Kernel);
        NicA = new RnicModel(Kernel, RnicModelOptions.Default with { PortAddress = 1 });
        NicB = new RnicModel(Kernel, RnicModelOptions.Default with { PortAddress = 2 });
        Link = new RnicLink(Kernel.Scheduler, NicA, NicB, link);
        NicA.Connect(Link);
        NicB.Connect(Link);
        Driver = new RnicDriver(Kernel);
        Bus.Plug(0, NicA);
        Bus.Plug(1, NicB);
        if (Bus.RegisterDriver(Driver) != 2)
            throw new InvalidOperationException("The RNIC driver did not bind to both NICs.");
        A = Kernel.CreateProcess("node-a");
        B = Kernel.CreateProcess("node-b");
        Check(Ibv.OpenDevice(Driver.Devices[0], A, out var ca), "ibv_open_device A");
        Check(Ibv.OpenDevice(Driver.Devices[1], B, out var cb), "ibv_open_device B");
        Ca = ca!;
        Cb = cb!;
        Check(Ca.AllocPd(out var pdA), "AllocPd A");
        Check(Cb.AllocPd(out var pdB), "AllocPd B");
        Check(Ca.CreateCq(2 * queueDepth, out var cqA), "CreateCq A");
        Check(Cb.CreateCq(2 * queueDepth, out var cqB), "CreateCq B");
        Check(Ca.CreateQp(pdA!, new IbvQpInitAttr(cqA!, cqA!, queueDepth, queueDepth), out var qpA), "CreateQp A");
        Check(Cb.CreateQp(pdB!, new IbvQpInitAttr(cqB!, cqB!, queueDepth, queueDepth), out var qpB), "CreateQp B");
        (PdA, PdB, CqA, CqB, QpA, QpB) = (pdA!, pdB!, cqA!, cqB!, qpA!, qpB!);
        BringUp(Ca, QpA, QpB.QpNum, Cb.PortAddress, sqPsn: 1000, rqPsn: 5000, ackTimeout);
        BringUp(Cb, QpB, QpA.QpNum, Ca.PortAddress, sqPsn: 5000, rqPsn: 1000, ackTimeout);
    }

    public HostKernel Kernel { get; }

    public PciBus Bus { get; }

    public RnicModel NicA { get; }

    public RnicModel NicB { get; }

    public RnicLink Link { get; }

    public RnicDriver Driver { get; }

    public Process A { get; }

    public Process B { get; }

    /// <summary>A's verbs context, on NIC 1.</summary>
    public IbvContext Ca { get; }

    /// <summary>B's verbs context, on NIC 2.</summary>
    public IbvContext Cb { get; }

    public IbvPd PdA { get; }

    public IbvPd PdB { get; }

    /// <summary>A's CQ (send and receive completions of <see cref="QpA"/>).</summary>
    public IbvCq CqA { get; }

    public IbvCq CqB { get; }

    /// <summary>A's end of the connected RC pair; the benchmarks post on it.</summary>
    public IbvQp QpA { get; }

    public IbvQp QpB { get; }

    /// <summary>Maps <paramref name="bytes"/> (a multiple of 4 KiB) of private anonymous memory in <paramref name="p"/>, not touched.</summary>
    public static ulong Map(Process p, ulong bytes) => p.Map(bytes, Prot.ReadWrite, MapFlags.PrivateAnonymous);

    /// <summary>Unmaps what <see cref="Map"/> mapped.</summary>
    public static void Unmap(Process p, ulong address, ulong bytes)
    {
        var err = p.Mm.Munmap(address, bytes);
        if (err != Errno.Ok)
            throw new InvalidOperationException($"munmap 0x{address:x}+0x{bytes:x}: {err}");
    }

    /// <summary>Writes a pattern that differs per page and per <paramref name="seed"/> over [address, +bytes) of <paramref name="p"/>.</summary>
    public static void FillPattern(Process p, ulong address, int bytes, int seed)
    {
        var data = new byte[bytes];
        for (int i = 0; i < bytes; i++)
            data[i] = Pattern(i, seed);
        p.WriteBytes(address, data);
    }

    /// <summary>Throws unless [address, +bytes) of <paramref name="p"/> holds the pattern <see cref="FillPattern"/> wrote.</summary>
    public static void CheckPattern(Process p, ulong address, int bytes, int seed, string what)
    {
        var data = new byte[bytes];
        p.ReadBytes(address, data);
        for (int i = 0; i < bytes; i++)
        {
            if (data[i] != Pattern(i, seed))
                throw new InvalidOperationException($"{what}: byte {i} is 0x{data[i]:x2}, expected 0x{Pattern(i, seed):x2}: the data did not arrive.");
        }
    }

    /// <summary>Registers an MR of <paramref name="p"/>'s context (pinned, or ODP with <paramref name="onDemand"/>).</summary>
    public IbvMr RegMr(Process p, ulong address, ulong bytes, bool onDemand)
    {
        var (ctx, pd) = ReferenceEquals(p, A) ? (Ca, PdA) : (Cb, PdB);
        Check(ctx.RegMr(pd, address, bytes, RemoteAccess | (onDemand ? RnicAccessFlags.OnDemand : 0), out var mr), "RegMr");
        return mr!;
    }

    /// <summary>Deregisters <paramref name="mr"/>.</summary>
    public void DeregMr(IbvMr mr) => Check(mr.Pd.Context.DeregMr(mr), "DeregMr");

    /// <summary>Posts <paramref name="wr"/> on <see cref="QpA"/>; throws if the SQ is full or the post is refused.</summary>
    public void PostA(in IbvSendWr wr) => Check(Ca.PostSend(QpA, wr), "PostSend");

    /// <summary>Posts <paramref name="wr"/> (signaled) on <see cref="QpA"/> and spins on <see cref="CqA"/> until its completion arrives.</summary>
    public void PostAndWait(in IbvSendWr wr)
    {
        PostA(wr);
        var wc = WaitCompletion();
        if (wc.WrId != wr.WrId)
            throw new InvalidOperationException($"Completion of WR {wc.WrId} arrived while waiting for WR {wr.WrId}.");
    }

    /// <summary>Spin-polls <see cref="CqA"/> until one completion arrives and returns it; throws on a non-success status.</summary>
    public RnicCqe WaitCompletion()
    {
        var wc = _wc.AsSpan();
        for (long i = 0; Ca.PollCq(CqA, wc) == 0; i++)
        {
            if (i > 100_000_000)
                throw new TimeoutException($"No completion on A's CQ: {Describe()}");
            // On two cores the engines' threads need this one: an empty poll gives it up (measured faster than
            // spinning, which starves them, and no slower than SpinWait's mix of spins and yields).
            Thread.Yield();
        }
        ThrowUnlessSuccess(wc[0]);
        return wc[0];
    }

    /// <summary>Both NICs' counters and the link's, for error messages and the cleanups' checks.</summary>
    public string Describe() => $"A {NicA.Stats}; B {NicB.Stats}; link {Link.Stats}";

    /// <summary>Checks that no device reported a device-level error and the kernel raised no warning.</summary>
    public void AssertHealthy()
    {
        foreach (var d in Driver.Devices)
        {
            if (d.DeviceErrors != 0 || d.FaultErrors != 0)
                throw new InvalidOperationException($"rnic{d.PortAddress}: {d.DeviceErrors} device error(s), {d.FaultErrors} failed fault(s).");
        }
        Kernel.AssertNoWarnings();
    }

    public static void Check(Errno err, string what)
    {
        if (err != Errno.Ok)
            throw new InvalidOperationException($"{what} failed: {err}");
    }

    public void Dispose()
    {
        Ca.Close();
        Cb.Close();
        Kernel.SystemWorkQueue.Flush();
        Bus.UnregisterDriver(Driver);
        Bus.Dispose();
        Link.Dispose();
        NicA.Dispose();
        NicB.Dispose();
        Kernel.Dispose();
    }

    private static byte Pattern(int i, int seed) => (byte)((i * 7) + seed + (i >> 12));

    private void ThrowUnlessSuccess(in RnicCqe wc)
    {
        if (wc.Status != RnicWcStatus.Success)
            throw new InvalidOperationException($"WR {wc.WrId} completed with {wc.Status}: {Describe()}");
    }

    // RESET → INIT → RTR → RTS, as RnicMachine.BringUp in the RNIC tests.
    private static void BringUp(IbvContext c, IbvQp qp, uint destQpn, uint destPort, uint sqPsn, uint rqPsn, byte ackTimeout)
    {
        var a = new RnicQpAttributes(State: RnicQpState.Init, AccessFlags: RemoteAccess & ~RnicAccessFlags.LocalWrite, Port: 1,
            PathMtu: RnicMtu.Mtu4096, Av: destPort, RqPsn: rqPsn, SqPsn: sqPsn, MinRnrTimer: 1, MaxDestRdAtomic: 16,
            MaxRdAtomic: 16, DestQpn: destQpn, Timeout: ackTimeout, RetryCnt: Retry, RnrRetry: RnrRetry);
        Check(c.ModifyQp(qp, a, RnicQpAttrMask.State | RnicQpAttrMask.AccessFlags | RnicQpAttrMask.PkeyIndex | RnicQpAttrMask.Port), "INIT");
        Check(c.ModifyQp(qp, a with { State = RnicQpState.Rtr }, RnicQpAttrMask.State | RnicQpAttrMask.Av | RnicQpAttrMask.PathMtu |
            RnicQpAttrMask.RqPsn | RnicQpAttrMask.MinRnrTimer | RnicQpAttrMask.MaxDestRdAtomic | RnicQpAttrMask.DestQpn), "RTR");
        Check(c.ModifyQp(qp, a with { State = RnicQpState.Rts }, RnicQpAttrMask.State | RnicQpAttrMask.Timeout | RnicQpAttrMask.RetryCnt |
            RnicQpAttrMask.RnrRetry | RnicQpAttrMask.MaxQpRdAtomic | RnicQpAttrMask.SqPsn), "RTS");
    }
}
