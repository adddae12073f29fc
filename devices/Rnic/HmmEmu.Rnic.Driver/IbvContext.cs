using HmmEmu.Kernel;
using HmmEmu.Kernel.Locking;

namespace HmmEmu.Rnic.Driver;

/// <summary>
/// A user context (ibv_context) of one process on one NIC: the verbs, with libibverbs names in .NET casing. Control
/// verbs (AllocPd, RegMr, CreateCq, CreateQp, ModifyQp, QueryQp, AdviseMr, Dereg/Destroy) are system calls into the
/// kernel driver and may sleep; the data path (PostSend, PostRecv, PollCq, ReqNotifyCq) only touches the rings and
/// the context's doorbell page, as a user-space provider library does. Expected failures return the kernel's errno;
/// misuse (an object of another context, a destroyed object) throws, naming the rule.
/// </summary>
public sealed partial class IbvContext
{
    private readonly Lock _lock = new();
    private readonly List<IbvPd> _pds = [];
    private readonly List<IbvMr> _mrs = [];
    private readonly List<IbvCq> _cqs = [];
    private readonly List<IbvQp> _qps = [];
    private readonly Dictionary<uint, IbvQp> _qpByNumber = [];
    private readonly Queue<IbvAsyncEvent> _asyncEvents = new();
    private readonly WaitQueue _waiters;
    private int _closed;

    internal IbvContext(RnicDevice device, Process process)
    {
        Device = device;
        Process = process;
        _waiters = new WaitQueue(device.Kernel, "ibv context");
    }

    /// <summary>The NIC.</summary>
    public RnicDevice Device { get; }

    /// <summary>The process the context belongs to (MR addresses are its virtual addresses).</summary>
    public Process Process { get; }

    /// <summary>The context's doorbell page (BAR2 page) and the number its PDs, CQs and QPs are created for.</summary>
    public uint Index { get; internal set; }

    /// <summary>This NIC's port address (the AV a peer puts in its QP).</summary>
    public uint PortAddress => Device.PortAddress;

    /// <summary>Whether <see cref="Close"/> ran.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    private HostKernel Kernel => Device.Kernel;

    // ---- protection domains and memory regions (system calls) -------------------------------------------------------

    /// <summary>ibv_alloc_pd. May sleep.</summary>
    public Errno AllocPd(out IbvPd? pd)
    {
        pd = null;
        Syscall();
        var done = Device.Execute(RnicCommand.AllocPd(0, Index));
        if (!done.IsOk)
            return RnicDevice.ToErrno(done.Status);
        pd = new IbvPd(this, done.ObjectNumber);
        lock (_lock)
            _pds.Add(pd);
        return Errno.Ok;
    }

    /// <summary>ibv_dealloc_pd: EBUSY while an MR or QP uses it. May sleep.</summary>
    public Errno DeallocPd(IbvPd pd)
    {
        Own(pd, pd?.Context, "DeallocPd");
        Syscall();
        var done = Device.Execute(RnicCommand.DeallocPd(0, pd!.Number));
        if (!done.IsOk)
            return RnicDevice.ToErrno(done.Status);
        pd.IsDeallocated = true;
        lock (_lock)
            _pds.Remove(pd);
        return Errno.Ok;
    }

    /// <summary>
    /// ibv_reg_mr over [<paramref name="address"/>, +<paramref name="length"/>) of the process. With
    /// <see cref="RnicAccessFlags.OnDemand"/> nothing is pinned (ODP); otherwise every page is pinned and DMA-mapped.
    /// EINVAL for an empty, wrapping, too large or badly flagged region; EFAULT when pages cannot be pinned. May sleep.
    /// </summary>
    public Errno RegMr(IbvPd pd, ulong address, ulong length, RnicAccessFlags access, out IbvMr? mr)
    {
        Own(pd, pd?.Context, "RegMr");
        mr = null;
        Syscall();
        if (length == 0 || address + length < address || address + length > HmmEmu.Kernel.Vm.Mm.TaskSize ||
            length > Device.Options.MaxMrBytes)
        {
            return Errno.EINVAL;
        }
        bool needsLocalWrite = (access & (RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteAtomic)) != 0;
        if (needsLocalWrite && (access & RnicAccessFlags.LocalWrite) == 0)
            return Errno.EINVAL;
        var m = new IbvMr(pd!, address, length, access);
        var err = m.Register();
        if (err != Errno.Ok)
            return err;
        Device.Register(m);
        lock (_lock)
            _mrs.Add(m);
        mr = m;
        return Errno.Ok;
    }

    /// <summary>ibv_dereg_mr: the key stops resolving and in-flight DMA drains before the pages are released. May sleep.</summary>
    public Errno DeregMr(IbvMr mr)
    {
        Own(mr, mr?.Pd.Context, "DeregMr");
        Syscall();
        var err = mr!.Deregister();
        if (err != Errno.Ok)
            return err;
        Device.Unregister(mr);
        lock (_lock)
            _mrs.Remove(mr);
        return Errno.Ok;
    }

    /// <summary>
    /// ibv_advise_mr: prefetch the pages of the SGEs' ranges into their (ODP) MRs, writable with
    /// <see cref="IbvAdvice.PrefetchWrite"/>. EINVAL for an SGE outside its MR or an lkey of another PD. May sleep.
    /// </summary>
    public Errno AdviseMr(IbvPd pd, IbvAdvice advice, ReadOnlySpan<RnicSge> sges)
    {
        Own(pd, pd?.Context, "AdviseMr");
        Syscall();
        foreach (var sge in sges)
        {
            IbvMr? mr;
            lock (_lock)
                mr = _mrs.Find(m => m.Lkey == sge.Lkey);
            if (mr is null || mr.Pd != pd || sge.Address < mr.Address || sge.Address + sge.Length > mr.Address + mr.Length)
                return Errno.EINVAL;
            var err = mr.Prefetch(sge.Address, sge.Length, advice == IbvAdvice.PrefetchWrite);
            if (err != Errno.Ok)
                return err;
        }
        return Errno.Ok;
    }

    // ---- completion queues -----------------------------------------------------------------------------------------------

    /// <summary>ibv_create_cq with at least <paramref name="entries"/> CQEs (rounded up to a power of two). May sleep.</summary>
    public Errno CreateCq(int entries, out IbvCq? cq)
    {
        cq = null;
        Syscall();
        if (entries < 1 || entries > 1 << 15)
            return Errno.EINVAL;
        uint n = Math.Max(RnicRegisters.MinQueueEntries, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)entries));
        var err = Device.Alloc(n * RnicCqe.Size, out var ring);
        if (err != Errno.Ok)
            return err;
        var done = Device.Execute(RnicCommand.CreateCq(0, Index, ring.BusAddress, n));
        if (!done.IsOk)
        {
            Device.Free(ring);
            return RnicDevice.ToErrno(done.Status);
        }
        cq = new IbvCq(this, done.ObjectNumber, ring, n);
        Device.Register(cq);
        lock (_lock)
            _cqs.Add(cq);
        return Errno.Ok;
    }

    /// <summary>ibv_destroy_cq: EBUSY while a QP uses it. May sleep.</summary>
    public Errno DestroyCq(IbvCq cq)
    {
        Own(cq, cq?.Context, "DestroyCq");
        Syscall();
        var done = Device.Execute(RnicCommand.DestroyCq(0, cq!.Number));
        if (!done.IsOk)
            return RnicDevice.ToErrno(done.Status);
        cq.IsDestroyed = true;
        Device.Unregister(cq);
        Device.Free(cq.Ring);
        lock (_lock)
            _cqs.Remove(cq);
        return Errno.Ok;
    }

    // ---- queue pairs -----------------------------------------------------------------------------------------------

    /// <summary>ibv_create_qp for an RC QP (created in RESET). May sleep.</summary>
    public Errno CreateQp(IbvPd pd, in IbvQpInitAttr init, out IbvQp? qp)
    {
        Own(pd, pd?.Context, "CreateQp");
        Own(init.SendCq, init.SendCq?.Context, "CreateQp");
        Own(init.RecvCq, init.RecvCq?.Context, "CreateQp");
        qp = null;
        Syscall();
        if (init.MaxSendWr < 1 || init.MaxRecvWr < 1 || init.MaxSendWr > 1 << 15 || init.MaxRecvWr > 1 << 15)
            return Errno.EINVAL;
        uint sqn = Math.Max(RnicRegisters.MinQueueEntries, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)init.MaxSendWr));
        uint rqn = Math.Max(RnicRegisters.MinQueueEntries, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)init.MaxRecvWr));
        var err = Device.Alloc(sqn * RnicSendWqe.Size, out var sq);
        if (err != Errno.Ok)
            return err;
        if ((err = Device.Alloc(rqn * RnicRecvWqe.Size, out var rq)) != Errno.Ok)
        {
            Device.Free(sq);
            return err;
        }
        var done = Device.Execute(RnicCommand.CreateQp(0, pd!.Number, Index, init.SendCq!.Number, init.RecvCq!.Number,
            sq.BusAddress, sqn, rq.BusAddress, rqn));
        if (!done.IsOk)
        {
            Device.Free(sq);
            Device.Free(rq);
            return RnicDevice.ToErrno(done.Status);
        }
        var q = new IbvQp(this, pd, done.ObjectNumber, init.SendCq, init.RecvCq, sq, sqn, rq, rqn);
        Device.Register(q);
        lock (_lock)
        {
            _qps.Add(q);
            _qpByNumber[q.QpNum] = q;
        }
        qp = q;
        return Errno.Ok;
    }

    /// <summary>
    /// ibv_modify_qp: EINVAL for a transition the state table does not have, a required attribute missing, one not
    /// allowed, or a bad value (<see cref="RnicQpStateMachine"/>). May sleep.
    /// </summary>
    public Errno ModifyQp(IbvQp qp, in RnicQpAttributes attributes, RnicQpAttrMask mask)
    {
        Own(qp, qp?.Context, "ModifyQp");
        Syscall();
        Span<byte> block = stackalloc byte[RnicQpAttributes.Size];
        attributes.Write(block);
        uint qpn = qp!.QpNum;
        var done = Device.Execute(bus => RnicCommand.ModifyQp(0, qpn, mask, bus), block, default);
        if (done.IsOk && (mask & RnicQpAttrMask.State) != 0)
            qp.State = attributes.State;
        return RnicDevice.ToErrno(done.Status);
    }

    /// <summary>ibv_query_qp: every attribute and the current state. May sleep.</summary>
    public Errno QueryQp(IbvQp qp, out RnicQpAttributes attributes)
    {
        Own(qp, qp?.Context, "QueryQp");
        Syscall();
        Span<byte> block = stackalloc byte[RnicQpAttributes.Size];
        uint qpn = qp!.QpNum;
        var done = Device.Execute(bus => RnicCommand.QueryQp(0, qpn, bus), default, block);
        attributes = done.IsOk ? RnicQpAttributes.Read(block) : default;
        if (done.IsOk)
            qp.State = attributes.State;
        return RnicDevice.ToErrno(done.Status);
    }

    /// <summary>ibv_destroy_qp: the QP's engines stop and its DMA drains; no more completions are written. May sleep.</summary>
    public Errno DestroyQp(IbvQp qp)
    {
        Own(qp, qp?.Context, "DestroyQp");
        Syscall();
        var done = Device.Execute(RnicCommand.DestroyQp(0, qp!.QpNum));
        if (!done.IsOk)
            return RnicDevice.ToErrno(done.Status);
        qp.IsDestroyed = true;
        Device.Unregister(qp);
        Device.Free(qp.Sq);
        Device.Free(qp.Rq);
        lock (_lock)
        {
            _qps.Remove(qp);
            _qpByNumber.Remove(qp.QpNum);
        }
        return Errno.Ok;
    }

    // ---- async events ------------------------------------------------------------------------------------------------

    /// <summary>ibv_get_async_event without blocking: the oldest event not yet taken, if any.</summary>
    public bool TryGetAsyncEvent(out IbvAsyncEvent e)
    {
        lock (_lock)
            return _asyncEvents.TryDequeue(out e);
    }

    /// <summary>ibv_get_async_event: waits for the next async event. May sleep.</summary>
    public IbvAsyncEvent GetAsyncEvent()
    {
        Kernel.MightSleep("ibv_get_async_event");
        IbvAsyncEvent e = default;
        _waiters.WaitEvent(this, c => c.TryGetAsyncEvent(out e) || c.IsClosed);
        return e;
    }

    /// <summary>ibv_get_cq_event: waits until <paramref name="cq"/> has a completion event and takes it. May sleep.</summary>
    public void GetCqEvent(IbvCq cq)
    {
        Own(cq, cq?.Context, "GetCqEvent");
        Kernel.MightSleep("ibv_get_cq_event");
        _waiters.WaitEvent(cq!, q => q.TryTakeEvent() || q.Context.IsClosed);
    }

    internal void PostAsyncEvent(IbvAsyncEvent e)
    {
        lock (_lock)
            _asyncEvents.Enqueue(e);
        _waiters.WakeUpAll();
    }

    internal void WakeWaiters() => _waiters.WakeUpAll();

    // ---- teardown ------------------------------------------------------------------------------------------------------

    /// <summary>
    /// Closes the context (as closing the verbs file does): QPs are destroyed first (no more DMA), then MRs deregistered,
    /// then CQs and PDs; the doorbell page is freed last. May sleep.
    /// </summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
            return;
        IbvQp[] qps;
        IbvMr[] mrs;
        IbvCq[] cqs;
        IbvPd[] pds;
        lock (_lock)
        {
            qps = [.. _qps];
            mrs = [.. _mrs];
            cqs = [.. _cqs];
            pds = [.. _pds];
        }
        foreach (var qp in qps)
        {
            Device.Execute(RnicCommand.DestroyQp(0, qp.QpNum));
            qp.IsDestroyed = true;
            Device.Unregister(qp);
            Device.Free(qp.Sq);
            Device.Free(qp.Rq);
        }
        foreach (var mr in mrs)
        {
            mr.Deregister();
            Device.Unregister(mr);
        }
        foreach (var cq in cqs)
        {
            Device.Execute(RnicCommand.DestroyCq(0, cq.Number));
            cq.IsDestroyed = true;
            Device.Unregister(cq);
            Device.Free(cq.Ring);
        }
        foreach (var pd in pds)
        {
            Device.Execute(RnicCommand.DeallocPd(0, pd.Number));
            pd.IsDeallocated = true;
        }
        lock (_lock)
        {
            _qps.Clear();
            _qpByNumber.Clear();
            _mrs.Clear();
            _cqs.Clear();
            _pds.Clear();
        }
        Device.RemoveContext(Index);
        _waiters.WakeUpAll();
    }

    private void Syscall()
    {
        Kernel.MightSleep("verbs system call");
        Kernel.Scheduler.Charge(Kernel.Timing.SyscallNs);
        if (IsClosed)
            throw new ObjectDisposedException(nameof(IbvContext), "The verbs context was closed; open the device again.");
    }

    private void Own(object? handle, IbvContext? owner, string verb)
    {
        ArgumentNullException.ThrowIfNull(handle, verb);
        if (!ReferenceEquals(owner, this))
        {
            throw new ArgumentException(
                $"{verb}: the object belongs to another verbs context; pass objects of the context you call (each process opens its own).",
                nameof(handle));
        }
    }
}
