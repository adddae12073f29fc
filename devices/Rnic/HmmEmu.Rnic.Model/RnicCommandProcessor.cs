using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Engines;
using HmmEmu.Hardware.Rings;
using HmmEmu.Simulation;
using Status = HmmEmu.Rnic.RnicCommandStatus;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// The command processor: one channel worker that runs control verbs from the command ring one at a time, in order,
/// writes each completion into the response array and then advances CMDQ_HEAD. Commands that must wait for DMA to
/// drain (DEREG_MR, INVALIDATE_MTT, DESTROY_QP) wait here, in virtual time, and hold up only later commands.
/// Resets run on the same worker, so a reset and the commands around it stay in order.
/// </summary>
internal sealed partial class RnicCommandProcessor : IEngineWorkHandler<RnicCommandProcessor.Work>, IDisposable
{
    private readonly RnicModel _model;
    private readonly EngineWorker<Work> _worker;
    private ulong _responseBase;
    private int _resetsPending;

    public RnicCommandProcessor(RnicModel model, Scheduler scheduler)
    {
        _model = model;
        Ring = new SubmissionRing(model.Memory, RnicCommand.Size);
        _worker = new EngineWorker<Work>(scheduler, $"rnic{model.Address} commands", this);
    }

    internal enum Work
    {
        Kick,
        Reset,
    }

    public SubmissionRing Ring { get; }

    public bool ResetPending => Volatile.Read(ref _resetsPending) != 0;

    public RingError Configure(ulong ringBase, ulong responseBase, uint size)
    {
        Volatile.Write(ref _responseBase, responseBase);
        return Ring.Configure(ringBase, size);
    }

    public void Kick() => _worker.Post(Work.Kick);

    /// <summary>Queues a reset behind the commands already rung. Never sleeps.</summary>
    public void RequestReset()
    {
        Interlocked.Increment(ref _resetsPending);
        // The queues stop now, so that nothing rung after the reset runs before it; an enable re-latches them.
        Ring.Disable();
        _model.ResetQueues();
        if (!_worker.Post(Work.Reset))
            Interlocked.Decrement(ref _resetsPending);
    }

    public void Run(Work item)
    {
        if (item == Work.Reset)
        {
            RunReset();
            return;
        }
        Span<byte> entry = stackalloc byte[RnicCommand.Size];
        while (true)
        {
            var fetch = Ring.TryPeek(entry, out var ticket);
            if (fetch == RingFetch.Faulted)
            {
                _model.DeviceError(RnicDeviceError.CommandQueueStopped, RnicRegisters.StatusCommandError, Ring.Status.ErrorIndex);
                return;
            }
            if (fetch != RingFetch.Entry)
                return;
            _model.Scheduler.Charge(_model.Options.CommandNs);
            var command = RnicCommand.Read(entry);
            RnicCommandCompletion done;
            if (!RnicCommand.ReservedIsZero(entry) || (command.Flags & ~RnicCommand.DefinedFlags) != 0)
                done = Fail(command, Status.BadOpcode);
            else
                done = Execute(command);
            ulong slot = Volatile.Read(ref _responseBase) + ((ticket.Index & (uint)(Ring.EntryCount - 1)) * (ulong)RnicCommandCompletion.Size);
            if (!_model.Memory.TryGetSpan(slot, RnicCommandCompletion.Size, write: true, out var span))
            {
                Ring.Disable();
                _model.DeviceError(RnicDeviceError.CommandQueueStopped, RnicRegisters.StatusCommandError, ticket.Index);
                return;
            }
            done.Write(span[..RnicCommandCompletion.Size]);
            if (!Ring.Advance(ticket))
                return;     // reset or reconfigured meanwhile
            if ((command.Flags & RnicCommandFlags.Interrupt) != 0)
                _model.CommandDone();
        }
    }

    public void Abort(Work item)
    {
        if (item == Work.Reset)
            Interlocked.Decrement(ref _resetsPending);
    }

    public void Dispose() => _worker.Dispose();

    private static RnicCommandCompletion Fail(RnicCommand c, Status status, ulong out0 = 0, ulong out1 = 0) =>
        new(c.Opcode, status, 0, c.Token, 0, 0, out0, out1);

    private static RnicCommandCompletion Ok(RnicCommand c, uint obj = 0, uint key = 0, ushort info = 0, ulong out0 = 0, ulong out1 = 0) =>
        new(c.Opcode, Status.Ok, info, c.Token, obj, key, out0, out1);

    private RnicCommandCompletion Execute(RnicCommand c) => c.Opcode switch
    {
        RnicCommandOpcode.Nop => Ok(c),
        RnicCommandOpcode.AllocPd => AllocPd(c),
        RnicCommandOpcode.DeallocPd => DeallocPd(c),
        RnicCommandOpcode.RegMr => RegMr(c, onDemand: false),
        RnicCommandOpcode.RegMrOdp => RegMr(c, onDemand: true),
        RnicCommandOpcode.DeregMr => DeregMr(c),
        RnicCommandOpcode.CreateCq => CreateCq(c),
        RnicCommandOpcode.DestroyCq => DestroyCq(c),
        RnicCommandOpcode.CreateQp => CreateQp(c),
        RnicCommandOpcode.ModifyQp => ModifyQp(c),
        RnicCommandOpcode.DestroyQp => DestroyQp(c),
        RnicCommandOpcode.InvalidateMtt => InvalidateMtt(c),
        RnicCommandOpcode.Resume => Resume(c),
        RnicCommandOpcode.QueryQp => QueryQp(c),
        RnicCommandOpcode.QueryCq => QueryCq(c),
        RnicCommandOpcode.QueryMr => QueryMr(c),
        RnicCommandOpcode.QueryPort => Ok(c, info: (ushort)_model.PortStateValue, out0: _model.Address, out1: (ulong)_model.Options.ActiveMtu),
        _ => Fail(c, Status.BadOpcode),
    };

    // Lowest free number from 1 (QPs from 2): allocation never depends on timing or hashing.
    private static uint FreeSlot<T>(T?[] table, uint first) where T : class
    {
        for (uint i = first; i < table.Length; i++)
        {
            if (table[i] is null)
                return i;
        }
        return 0;
    }

    private RnicPd? LookupPd(ulong pdn)
    {
        var pds = _model.Pds;
        return pdn < (ulong)pds.Length ? pds[pdn] : null;
    }

    private RnicCommandCompletion AllocPd(RnicCommand c)
    {
        if (c.Arg0 >= RnicDoorbells.Contexts)
            return Fail(c, Status.BadArgument);
        lock (_model.Objects)
        {
            uint n = FreeSlot(_model.Pds, 1);
            if (n == 0)
                return Fail(c, Status.NoResources);
            _model.Pds[n] = new RnicPd(n, (uint)c.Arg0);
            return Ok(c, n);
        }
    }

    private RnicCommandCompletion DeallocPd(RnicCommand c)
    {
        lock (_model.Objects)
        {
            if (LookupPd(c.Arg0) is not { } pd)
                return Fail(c, Status.BadObject);
            if (pd.References != 0)
                return Fail(c, Status.Busy);
            _model.Pds[pd.Number] = null;
            return Ok(c);
        }
    }

    private RnicCommandCompletion RegMr(RnicCommand c, bool onDemand)
    {
        ulong iova = c.Arg1, length = c.Arg2, mtt = c.Arg4, entries = c.Arg5;
        var access = (RnicAccessFlags)c.Arg3;
        const RnicAccessFlags defined = RnicAccessFlags.LocalWrite | RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteRead |
            RnicAccessFlags.RemoteAtomic | RnicAccessFlags.OnDemand;
        if (length == 0 || iova + length < iova || (mtt & (RnicMttEntry.Size - 1)) != 0 || (c.Arg3 & ~(ulong)defined) != 0)
            return Fail(c, Status.BadArgument);
        if (entries != RnicMttEntry.PagesSpanned(iova, length) || entries > _model.Options.MaxMtt)
            return Fail(c, Status.BadArgument);
        bool needsLocalWrite = (access & (RnicAccessFlags.RemoteWrite | RnicAccessFlags.RemoteAtomic)) != 0;
        if ((needsLocalWrite && (access & RnicAccessFlags.LocalWrite) == 0) || ((access & RnicAccessFlags.OnDemand) != 0) != onDemand)
            return Fail(c, Status.BadAccess);
        // The MTT must be readable (and, for ODP, writable) host memory: checked page by page.
        for (ulong at = mtt & ~(RnicMttEntry.PageSize - 1); at < mtt + (entries * RnicMttEntry.Size); at += RnicMttEntry.PageSize)
        {
            if (!_model.Memory.TryGetSpan(at, 1, write: onDemand, out _))
                return Fail(c, Status.MemoryError);
        }
        if (onDemand)
        {
            for (ulong i = 0; i < entries; i++)
                _model.Memory.TryWriteUInt64(mtt + (i * RnicMttEntry.Size), 0);
        }
        lock (_model.Objects)
        {
            if (LookupPd(c.Arg0) is not { } pd)
                return Fail(c, Status.BadObject);
            uint index = FreeSlot(_model.Mrs, 1);
            if (index == 0)
                return Fail(c, Status.NoResources);
            byte keyByte = RnicKey.NextKeyByte(_model.KeyBytes[index]);
            _model.KeyBytes[index] = keyByte;
            var key = RnicKey.Compose(index, keyByte);
            pd.References++;
            Volatile.Write(ref _model.Mrs[index], new RnicMr(key, pd, iova, length, access, mtt, (uint)entries));
            return Ok(c, index, key.Value);
        }
    }

    private RnicCommandCompletion DeregMr(RnicCommand c)
    {
        RnicMr? mr;
        lock (_model.Objects)
        {
            mr = _model.FindMr((uint)c.Arg0);
            if (mr is null)
                return Fail(c, Status.BadObject);
            mr.Kill();
        }
        // Faults pending on the MR end as if RESUME with ERROR.
        FailFaultsOn(mr);
        // The key no longer resolves; wait for the DMA that translated through it, then free the index.
        _model.Translation.Tlb.InvalidateAsid(mr.CacheId).Wait();
        lock (_model.Objects)
        {
            Volatile.Write(ref _model.Mrs[mr.Key.Index], null);
            mr.Pd.References--;
        }
        return Ok(c);
    }

    private RnicCommandCompletion CreateCq(RnicCommand c)
    {
        ulong ring = c.Arg1, entries = c.Arg2;
        if (c.Arg0 >= RnicDoorbells.Contexts || entries < RnicRegisters.MinQueueEntries || entries > _model.Options.MaxCqe ||
            (entries & (entries - 1)) != 0 || (ring & (RnicCqe.Size - 1)) != 0)
        {
            return Fail(c, Status.BadArgument);
        }
        if (!RangeUsable(ring, entries * RnicCqe.Size, write: true))
            return Fail(c, Status.MemoryError);
        lock (_model.Objects)
        {
            uint n = FreeSlot(_model.Cqs, 1);
            if (n == 0)
                return Fail(c, Status.NoResources);
            Volatile.Write(ref _model.Cqs[n], new RnicCq(n, (uint)c.Arg0, ring, (uint)entries));
            return Ok(c, n);
        }
    }

    private RnicCommandCompletion DestroyCq(RnicCommand c)
    {
        lock (_model.Objects)
        {
            var cqs = _model.Cqs;
            if (c.Arg0 >= (ulong)cqs.Length || cqs[c.Arg0] is not { } cq)
                return Fail(c, Status.BadObject);
            if (cq.References != 0)
                return Fail(c, Status.Busy);
            Volatile.Write(ref cqs[c.Arg0], null);
            return Ok(c);
        }
    }

    private RnicCommandCompletion CreateQp(RnicCommand c)
    {
        uint sqEntries = (uint)c.Arg6, rqEntries = (uint)(c.Arg6 >> 32);
        ulong sq = c.Arg4, rq = c.Arg5;
        uint max = _model.Options.MaxQpWr;
        static bool Pow2(uint v) => v >= RnicRegisters.MinQueueEntries && (v & (v - 1)) == 0;
        if (c.Arg1 >= RnicDoorbells.Contexts || !Pow2(sqEntries) || !Pow2(rqEntries) || sqEntries > max || rqEntries > max ||
            (sq & (RnicSendWqe.Size - 1)) != 0 || (rq & (RnicRecvWqe.Size - 1)) != 0)
        {
            return Fail(c, Status.BadArgument);
        }
        if (!RangeUsable(sq, sqEntries * (ulong)RnicSendWqe.Size, write: false) || !RangeUsable(rq, rqEntries * (ulong)RnicRecvWqe.Size, write: false))
            return Fail(c, Status.MemoryError);
        lock (_model.Objects)
        {
            var cqs = _model.Cqs;
            if (LookupPd(c.Arg0) is not { } pd || c.Arg2 >= (ulong)cqs.Length || cqs[c.Arg2] is not { } sendCq ||
                c.Arg3 >= (ulong)cqs.Length || cqs[c.Arg3] is not { } recvCq)
            {
                return Fail(c, Status.BadObject);
            }
            uint n = FreeSlot(_model.Qps, 2);
            if (n == 0)
                return Fail(c, Status.NoResources);
            var qp = new RnicQp(n, (uint)c.Arg1, pd, sendCq, recvCq, sq, sqEntries, rq, rqEntries);
            pd.References++;
            sendCq.References++;
            recvCq.References++;
            Volatile.Write(ref _model.Qps[n], qp);
            return Ok(c, n);
        }
    }

    private RnicCommandCompletion DestroyQp(RnicCommand c)
    {
        RnicQp? qp;
        lock (_model.Objects)
        {
            qp = _model.FindQp((uint)c.Arg0);
            if (qp is null || c.Arg0 < 2)
                return Fail(c, Status.BadObject);
            Volatile.Write(ref _model.Qps[qp.Number], null);
        }
        lock (qp.Sync)
        {
            qp.Destroyed = true;
            qp.Generation++;
            qp.ClearLocked();
        }
        WaitIdle(qp);
        lock (_model.Objects)
        {
            qp.Pd.References--;
            qp.SendCq.References--;
            qp.RecvCq.References--;
        }
        return Ok(c);
    }

    private RnicCommandCompletion InvalidateMtt(RnicCommand c)
    {
        var mr = _model.FindMr((uint)c.Arg0);
        if (mr is null)
            return Fail(c, Status.BadObject);
        if (!mr.OnDemand)
            return Fail(c, Status.BadState);
        ulong first = c.Arg1, count = c.Arg2;
        if (count == 0 || first >= mr.MttEntries || count > mr.MttEntries - first)
            return Fail(c, Status.BadArgument);
        for (ulong i = first; i < first + count; i++)
        {
            if (!_model.Memory.TryWriteUInt64(mr.MttAddress + (i * RnicMttEntry.Size), 0))
                return Fail(c, Status.MemoryError);
        }
        ulong firstPage = (mr.Iova >> RnicMttEntry.PageShift) + first;
        // Drop the cached entries, then wait for every DMA that translated through them: only then may the pages go.
        _model.Translation.Tlb.InvalidateRange(mr.CacheId, firstPage << RnicMttEntry.PageShift,
            (firstPage + count) << RnicMttEntry.PageShift).Wait();
        _model.Counters.Invalidations.Increment();
        return Ok(c);
    }

    private RnicCommandCompletion Resume(RnicCommand c)
    {
        var qp = _model.FindQp((uint)c.Arg0);
        if (qp is null)
            return Fail(c, Status.BadObject);
        var side = (RnicFaultSide)c.Arg1;
        bool error = (c.Arg2 & RnicCommand.ResumeError) != 0;
        if (side is not (RnicFaultSide.Requester or RnicFaultSide.Responder) || (c.Arg2 & ~RnicCommand.ResumeError) != 0)
            return Fail(c, Status.BadArgument);
        bool resumed = side == RnicFaultSide.Requester
            ? _model.Requester.Resume(qp, error)
            : _model.Responder.Resume(qp, error);
        return resumed ? Ok(c) : Fail(c, Status.NotPending);
    }

    private RnicCommandCompletion QueryQp(RnicCommand c)
    {
        var qp = _model.FindQp((uint)c.Arg0);
        if (qp is null)
            return Fail(c, Status.BadObject);
        RnicQpAttributes attrs;
        ulong out0, out1;
        lock (qp.Sync)
        {
            attrs = new RnicQpAttributes(qp.State, qp.State, qp.PathMtu, 1, 0, qp.MinRnrTimer, qp.Timeout, qp.RemoteAccess,
                qp.DestQpn, qp.InitialRqPsn, qp.InitialSqPsn, qp.Av, 0, qp.RetryCount, qp.RnrRetry, qp.MaxRdAtomic,
                qp.MaxDestRdAtomic, qp.SqdNotify, qp.State == RnicQpState.Sqd && qp.Outstanding.Count != 0);
            out0 = qp.SqConsumer | ((ulong)qp.RqConsumer << 32);
            out1 = (qp.RequesterFault ? RnicCommandCompletion.QpRequesterFaultPending : 0) |
                (qp.ResponderFault ? RnicCommandCompletion.QpResponderFaultPending : 0);
        }
        Span<byte> block = stackalloc byte[RnicQpAttributes.Size];
        attrs.Write(block);
        if (!_model.Memory.TryWrite(c.Arg1, block))
            return Fail(c, Status.MemoryError);
        return Ok(c, qp.Number, info: (ushort)attrs.State, out0: out0, out1: out1);
    }

    private RnicCommandCompletion QueryCq(RnicCommand c)
    {
        var cqs = _model.Cqs;
        if (c.Arg0 >= (ulong)cqs.Length || Volatile.Read(ref cqs[c.Arg0]) is not { } cq)
            return Fail(c, Status.BadObject);
        var (info, producer) = cq.Query();
        return Ok(c, cq.Number, info: info, out0: producer | ((ulong)cq.Entries << 32));
    }

    private RnicCommandCompletion QueryMr(RnicCommand c)
    {
        var mr = _model.FindMr((uint)c.Arg0);
        if (mr is null)
            return Fail(c, Status.BadObject);
        return Ok(c, mr.Pd.Number, mr.Key.Value, (ushort)mr.Access, mr.Iova, mr.Length);
    }

    private bool RangeUsable(ulong address, ulong length, bool write)
    {
        for (ulong at = address & ~(RnicMttEntry.PageSize - 1); at < address + length; at += RnicMttEntry.PageSize)
        {
            if (!_model.Memory.TryGetSpan(at, 1, write, out _))
                return false;
        }
        return true;
    }

    // Engines bump qp.Busy around work done outside the QP's lock; destroy waits (in virtual time) until they left.
    private void WaitIdle(RnicQp qp)
    {
        for (int i = 0; Volatile.Read(ref qp.Busy) != 0; i++)
        {
            if (i > 10_000_000)
                throw new InvalidOperationException($"rnic{_model.Address}: QP {qp.Number} stayed busy; an engine leaked its Busy count.");
            _model.Scheduler.Sleep(50);
        }
    }

    private void FailFaultsOn(RnicMr mr)
    {
        var qps = new List<RnicQp>();
        _model.CollectQps(qps);
        foreach (var qp in qps)
        {
            if (qp.Pd == mr.Pd)
                _model.Completer.FailFaultsOnMr(qp, mr, _model.Responder);
        }
    }

    private void RunReset()
    {
        var qps = new List<RnicQp>();
        _model.CollectQps(qps);
        lock (_model.Objects)
        {
            Array.Clear(_model.Qps);
            Array.Clear(_model.Cqs);
            Array.Clear(_model.Pds);
            foreach (var mr in _model.Mrs)
                mr?.Kill();
        }
        foreach (var qp in qps)
        {
            lock (qp.Sync)
            {
                qp.Destroyed = true;
                qp.Generation++;
                qp.ClearLocked();
            }
            WaitIdle(qp);
        }
        _model.Translation.Tlb.InvalidateAll().Wait();
        lock (_model.Objects)
            Array.Clear(_model.Mrs);
        if (Interlocked.Decrement(ref _resetsPending) == 0)
            _model.ResetDone();
    }
}
