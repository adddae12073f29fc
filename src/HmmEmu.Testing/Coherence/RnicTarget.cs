using HmmEmu.Hardware.Mmu;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;
using HmmEmu.Rnic;
using HmmEmu.Rnic.Driver;
using HmmEmu.Rnic.Model;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// The suite's view of our RDMA NIC (devices/Rnic): two register-level NICs (ports 1 and 2) joined by a link on a PCI
/// bus of their own, with the verbs driver bound to both. The process opens a verbs context on each; on NIC B it
/// registers one on-demand-paging MR over every tracked slot, which is the mirror under test: NIC B's DMA into the
/// tracked pages goes through its MTT, filled by the driver's ODP fault handler (hmm_range_fault) and zapped by the
/// MR's interval notifier. A device read is an RDMA READ posted on NIC A from that MR into a bounce buffer, a device
/// write an RDMA WRITE the other way, and the device atomic an RDMA FETCH_AND_ADD. The device's translations are what
/// NIC B's hardware would use: the MR's MTT entries of the tracked pages and the MTT cache's entries for the MR.
/// </summary>
/// <remarks>
/// A remote access error (an ODP fault the driver could not resolve, a right the CPU does not grant) moves both QPs of
/// the pair to ERR, so each open device holds one QP pair per command that may use it at once (two: a concurrent
/// pair), and replaces a pair that failed before its next use, as an application would after IBV_WC_REM_ACCESS_ERR.
/// The NIC has no device memory and no device-exclusive mappings: its atomics are executed indivisibly at system memory
/// (the model's responder does the read-modify-write as one interlocked operation, as PCIe AtomicOps would), so it
/// offers <see cref="MirrorCapabilities.Atomics"/> as <see cref="MirrorCapabilities.BusAtomics"/>, and nothing else.
/// </remarks>
public sealed class RnicTarget : IMirrorTarget
{
    /// <summary>
    /// The ODP MR's access: remote READ, WRITE and atomics (and LocalWrite, which the last two require).
    /// </summary>
    public const RnicAccessFlags MirrorAccess = RnicAccessFlags.OnDemand | RnicAccessFlags.LocalWrite |
        RnicAccessFlags.RemoteRead | RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteAtomic;

    /// <inheritdoc />
    public string Name => "nic";

    /// <inheritdoc />
    public MirrorCapabilities Capabilities => MirrorCapabilities.Atomics | MirrorCapabilities.BusAtomics;

    /// <inheritdoc />
    public IMirrorTargetDevice CreateDevice(HostKernel kernel, int unit)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var nicA = new RnicModel(kernel, RnicModelOptions.Default with { PortAddress = 1 });
        // A small MTT cache on the mirroring NIC, so that the tracked pages of three processes keep evicting one another.
        var nicB = new RnicModel(kernel, RnicModelOptions.Default with { PortAddress = 2, CacheSets = 8, CacheWays = 2 });
        var link = new RnicLink(kernel.Scheduler, nicA, nicB);
        nicA.Connect(link);
        nicB.Connect(link);
        var bus = new PciBus(kernel, $"pci-nic{unit}");
        var driver = new RnicDriver(kernel);
        kernel.Run(() =>
        {
            bus.Plug(0, nicA);
            bus.Plug(1, nicB);
            if (bus.RegisterDriver(driver) != 2)
                throw new InvalidOperationException($"the RNIC driver did not bind to both NICs of device {unit}");
        });
        return new Device(kernel, bus, link, nicA, nicB, driver);
    }

    private sealed class Device(HostKernel kernel, PciBus bus, RnicLink link, RnicModel nicA, RnicModel nicB, RnicDriver driver)
        : IMirrorTargetDevice, IDisposable
    {
        private readonly CompletionLedger _ledgerA = new("NIC A");
        private readonly CompletionLedger _ledgerB = new("NIC B");

        public HostKernel Kernel => kernel;

        /// <summary>Work requests on NIC A: each must complete exactly once (INV-12).</summary>
        public CompletionLedger LedgerA => _ledgerA;

        /// <summary>The NIC whose DMA reaches the tracked pages through the ODP MR.</summary>
        public RnicModel ModelB => nicB;

        public RnicDevice A => Bound(nicA);

        public RnicDevice B => Bound(nicB);

        public int AllocatedDevicePages => 0;

        private RnicDevice Bound(RnicModel model) =>
            driver.Devices.FirstOrDefault(d => d.PortAddress == model.Address)
            ?? throw new InvalidOperationException($"no bound RNIC has port address {model.Address}");

        public IMirrorContext Open()
        {
            var process = kernel.CurrentProcess ?? throw new InvalidOperationException("Open must run on a process thread.");
            var context = new Context(this, process);
            context.Open();
            return context;
        }

        public void Remove() => bus.UnregisterDriver(driver);

        // INV-13 at quiescence: every page fault of either NIC answered (RESUME), so no QP is left waiting on one.
        // INV-12 at quiescence: NIC A wrote exactly one completion per work request posted on it, and NIC B (the
        // responder of RDMA READ, WRITE and atomics, which complete on the requester) none.
        public IEnumerable<string> QuiescentProblems()
        {
            foreach (var nic in new[] { nicA, nicB })
            {
                foreach (var f in nic.PendingFaults())
                    yield return $"INV-13 (faults answered): NIC port {nic.Address} QP {f.Qp} still waits on a {f.Side.ToString().ToLowerInvariant()} page fault nobody answered";
            }
            foreach (var p in _ledgerA.Problems(nicA.Stats.Completions).Concat(_ledgerB.Problems(nicB.Stats.Completions)))
                yield return p;
        }

        public void Dispose()
        {
            bus.Dispose();
            link.Dispose();
            nicA.Dispose();
            nicB.Dispose();
        }
    }

    private const int Slots = CommandSlots.Count;
    private const ulong BounceBytes = Layout.PagesPerSlot * (ulong)Layout.PageSize;
    private const ulong TrackedBytes = (ulong)Layout.Slots << 20;
    private const int QueueDepth = 4;

    // Polls of a send CQ, 1 µs apart, before a lost completion counts as a hang (far beyond every retry timer).
    private const int PollLimit = 4_000_000;

    // One command's QP pair: the requester on NIC A, the responder on NIC B, each with its own CQ.
    private sealed class Slot
    {
        public IbvCq? CqA;
        public IbvCq? CqB;
        public IbvQp? QpA;
        public IbvQp? QpB;
        public bool Failed;             // a completion error moved the pair to ERR: replace it before the next use
    }

    private sealed class Context(Device device, Process process) : IMirrorContext
    {
        private readonly Slot[] _slots = [new(), new()];
        private IbvContext? _ca;
        private IbvContext? _cb;
        private IbvPd? _pdA;
        private IbvPd? _pdB;
        private IbvMr? _mirror;
        private IbvMr? _bounceMr;
        private ulong _bounce;
        private readonly CommandSlots _taken = new("NIC device");
        private bool _closed;

        public MmuIntervalNotifier? Notifier => null;

        // The mirror's notifier, and the bounce buffers' (an ODP MR too; it covers no tracked page).
        public IReadOnlyList<MmuIntervalNotifier> Notifiers =>
            _closed ? [] : [.. new[] { _mirror?.Notifier, _bounceMr?.Notifier }.OfType<MmuIntervalNotifier>()];

        // Opens both contexts, the ODP MR over the tracked slots, the bounce buffers' MR and a QP pair per slot. May sleep.
        public void Open()
        {
            Check(Ibv.OpenDevice(device.A, process, out _ca), "ibv_open_device(A)");
            Check(Ibv.OpenDevice(device.B, process, out _cb), "ibv_open_device(B)");
            Check(_ca!.AllocPd(out _pdA), "ibv_alloc_pd(A)");
            Check(_cb!.AllocPd(out _pdB), "ibv_alloc_pd(B)");
            // ODP needs nothing mapped: the notifier covers the range, and every MTT entry starts invalid.
            Check(_cb.RegMr(_pdB!, Layout.Base, TrackedBytes, MirrorAccess, out _mirror), "ibv_reg_mr(ODP mirror)");
            _bounce = process.Map(BounceBytes * Slots, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            // ODP, not pinned: a pinned bounce page would stay behind when a fork's copy-on-write gives the process a
            // new page at that address (this kernel does not copy pinned pages at fork), and NIC A would then DMA a
            // page the process no longer sees. An ODP MR follows the CPU's page table.
            Check(_ca.RegMr(_pdA!, _bounce, BounceBytes * Slots, RnicAccessFlags.OnDemand | RnicAccessFlags.LocalWrite, out _bounceMr),
                "ibv_reg_mr(bounce)");
            for (int slot = 0; slot < Slots; slot++)
                Connect(_slots[slot]);
        }

        private void Connect(Slot s)
        {
            Check(_ca!.CreateCq(QueueDepth, out s.CqA), "ibv_create_cq(A)");
            Check(_cb!.CreateCq(QueueDepth, out s.CqB), "ibv_create_cq(B)");
            Check(_ca.CreateQp(_pdA!, new IbvQpInitAttr(s.CqA!, s.CqA!, QueueDepth, QueueDepth), out s.QpA), "ibv_create_qp(A)");
            Check(_cb.CreateQp(_pdB!, new IbvQpInitAttr(s.CqB!, s.CqB!, QueueDepth, QueueDepth), out s.QpB), "ibv_create_qp(B)");
            BringUp(_ca, s.QpA!, s.QpB!.QpNum, _cb.PortAddress, sqPsn: 1000, rqPsn: 5000);
            BringUp(_cb, s.QpB, s.QpA!.QpNum, _ca.PortAddress, sqPsn: 5000, rqPsn: 1000);
            s.Failed = false;
        }

        // RESET → INIT → RTR → RTS with the attributes an RC connection needs (as RnicMachine.BringUp does).
        private static void BringUp(IbvContext c, IbvQp qp, uint destQpn, uint destPort, uint sqPsn, uint rqPsn)
        {
            var a = new RnicQpAttributes(State: RnicQpState.Init,
                AccessFlags: RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead | RnicAccessFlags.RemoteAtomic,
                Port: 1, PathMtu: RnicMtu.Mtu4096, Av: destPort, RqPsn: rqPsn, SqPsn: sqPsn, MinRnrTimer: 1, MaxDestRdAtomic: 16,
                MaxRdAtomic: 16, DestQpn: destQpn, Timeout: 12, RetryCnt: 7, RnrRetry: RnicQpAttributes.RnrRetryInfinite);
            Check(c.ModifyQp(qp, a, RnicQpAttrMask.State | RnicQpAttrMask.AccessFlags | RnicQpAttrMask.PkeyIndex | RnicQpAttrMask.Port), "INIT");
            Check(c.ModifyQp(qp, a with { State = RnicQpState.Rtr }, RnicQpAttrMask.State | RnicQpAttrMask.Av | RnicQpAttrMask.PathMtu |
                RnicQpAttrMask.RqPsn | RnicQpAttrMask.MinRnrTimer | RnicQpAttrMask.MaxDestRdAtomic | RnicQpAttrMask.DestQpn), "RTR");
            Check(c.ModifyQp(qp, a with { State = RnicQpState.Rts }, RnicQpAttrMask.State | RnicQpAttrMask.Timeout | RnicQpAttrMask.RetryCnt |
                RnicQpAttrMask.RnrRetry | RnicQpAttrMask.MaxQpRdAtomic | RnicQpAttrMask.SqPsn), "RTS");
        }

        // Destroys a slot's QPs (no more DMA, no more completions) and then its CQs.
        private void Disconnect(Slot s)
        {
            if (s.QpA is { } qpA)
                Check(_ca!.DestroyQp(qpA), "ibv_destroy_qp(A)");
            if (s.QpB is { } qpB)
                Check(_cb!.DestroyQp(qpB), "ibv_destroy_qp(B)");
            if (s.CqA is { } cqA)
                Check(_ca!.DestroyCq(cqA), "ibv_destroy_cq(A)");
            if (s.CqB is { } cqB)
                Check(_cb!.DestroyCq(cqB), "ibv_destroy_cq(B)");
            s.QpA = s.QpB = null;
            s.CqA = s.CqB = null;
        }

        private static void Check(Errno err, string verb)
        {
            if (err != Errno.Ok)
                throw new InvalidOperationException($"{verb} failed with {err}");
        }

        // Takes a free slot; a slot whose QP pair went to ERR gets a fresh pair first.
        private int Take()
        {
            int slot = _taken.Take();
            var s = _slots[slot];
            if (s.Failed)
            {
                Disconnect(s);
                Connect(s);
            }
            return slot;
        }

        private void Return(int slot) => _taken.Return(slot);

        private ulong Bounce(int slot) => _bounce + ((ulong)slot * BounceBytes);

        // Posts one signaled WR on slot's requester QP, waits for its completion and maps the status to an errno.
        private Errno Run(int slot, RnicWrOpcode opcode, ulong remote, ulong localBytes, ulong addend = 0)
        {
            var s = _slots[slot];
            var sge = new RnicSge(Bounce(slot), (uint)localBytes, _bounceMr!.Lkey);
            var wr = new IbvSendWr((ulong)slot, opcode, RnicSendFlags.Signaled, [sge], remote, _mirror!.Rkey, CompareAdd: addend);
            if (_ca!.PostSend(s.QpA!, wr) != Errno.Ok)
            {
                s.Failed = true;
                return Errno.EIO;
            }
            device.LedgerA.Posted();
            var cqe = WaitCompletion(s.CqA!);
            if (cqe.WrId != (ulong)slot || cqe.QpNumber != s.QpA!.QpNum)
            {
                device.LedgerA.Note($"the completion of WR {slot} on QP {s.QpA!.QpNum} names WR {cqe.WrId} on QP {cqe.QpNumber}");
                s.Failed = true;
                return Errno.EIO;
            }
            if (cqe.Status == RnicWcStatus.Success)
                return Errno.Ok;
            s.Failed = true;
            return cqe.Status == RnicWcStatus.RemAccessErr ? Errno.EFAULT : Errno.EIO;
        }

        // Polls cq, sleeping 1 µs of virtual time between polls. May sleep.
        private RnicCqe WaitCompletion(IbvCq cq)
        {
            Span<RnicCqe> wc = stackalloc RnicCqe[1];
            for (int i = 0; _ca!.PollCq(cq, wc) == 0; i++)
            {
                if (i > PollLimit)
                    throw new InvalidOperationException($"no completion on NIC A's CQ {cq.Number} after {PollLimit} µs: a work request hangs");
                device.Kernel.Scheduler.Sleep(1_000);
            }
            return wc[0];
        }

        public Errno Read(ulong addr, Span<byte> destination)
        {
            int slot = Take();
            try
            {
                var err = Run(slot, RnicWrOpcode.RdmaRead, addr, (ulong)destination.Length);
                return err != Errno.Ok ? err : process.Mm.CopyFromUser(Bounce(slot), destination);
            }
            finally
            {
                Return(slot);
            }
        }

        public Errno Write(ulong addr, ReadOnlySpan<byte> source)
        {
            int slot = Take();
            try
            {
                var err = process.Mm.CopyToUser(Bounce(slot), source);
                return err != Errno.Ok ? err : Run(slot, RnicWrOpcode.RdmaWrite, addr, (ulong)source.Length);
            }
            finally
            {
                Return(slot);
            }
        }

        public Errno MigrateToDevice(ulong addr, ulong npages) => Errno.EOPNOTSUPP;

        public Errno MigrateToSystem(ulong addr, ulong npages) => Errno.EOPNOTSUPP;

        public Errno Exclusive(ulong addr, ulong npages, Span<byte> destination) => Errno.EOPNOTSUPP;

        public Errno AtomicAdd(ulong addr, long value, out long? previous)
        {
            previous = null;
            int slot = Take();
            try
            {
                var err = Run(slot, RnicWrOpcode.AtomicFetchAndAdd, addr, sizeof(ulong), (ulong)value);
                if (err != Errno.Ok)
                    return err;
                Span<byte> old = stackalloc byte[sizeof(long)];
                err = process.Mm.CopyFromUser(Bounce(slot), old);
                if (err == Errno.Ok)
                    previous = BitConverter.ToInt64(old);
                return err;
            }
            finally
            {
                Return(slot);
            }
        }

        public void Close()
        {
            _closed = true;
            foreach (var s in _slots)
                Disconnect(s);
            if (_mirror is { } mirror)
                Check(_cb!.DeregMr(mirror), "ibv_dereg_mr(ODP mirror)");
            if (_bounceMr is { } bounceMr)
                Check(_ca!.DeregMr(bounceMr), "ibv_dereg_mr(bounce)");
            if (_pdA is { } pdA)
                Check(_ca!.DeallocPd(pdA), "ibv_dealloc_pd(A)");
            if (_pdB is { } pdB)
                Check(_cb!.DeallocPd(pdB), "ibv_dealloc_pd(B)");
            _ca?.Close();
            _cb?.Close();
            if (!process.HasExited && _bounce != 0)
                process.Mm.Munmap(_bounce, BounceBytes * Slots);
        }

        public IReadOnlyList<DeviceTranslation> Translations()
        {
            if (_closed || _mirror is not { } mirror)
                return [];
            var found = new List<DeviceTranslation>();
            var nic = device.ModelB;
            for (int page = 0; page < Layout.Pages; page++)
            {
                ulong addr = Layout.PageAddress(page);
                if (nic.InspectMtt(mirror.Rkey, addr) is { IsValid: true, ReservedIsZero: true } entry)
                    found.Add(new DeviceTranslation(addr, entry.PageAddress >> RnicMttEntry.PageShift, entry.IsWritable, Atomic: false, "mtt"));
            }
            // The MTT cache is tagged with the MR's index (its translation-cache id).
            uint index = new RnicKey(mirror.Rkey).Index;
            foreach (var e in nic.Translation.Tlb.Snapshot())
            {
                if (e.Asid == index && Layout.IsTracked(e.Address))
                {
                    bool writable = (e.Pte.Permissions & PtePermissions.Write) != 0;
                    found.Add(new DeviceTranslation(e.Address, e.Pte.Pfn, writable, Atomic: false, "mtt-cache"));
                }
            }
            return found;
        }
    }
}
