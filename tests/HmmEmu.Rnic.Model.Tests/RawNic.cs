using System.Buffers.Binary;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using static HmmEmu.Rnic.RnicRegisters;

namespace HmmEmu.Rnic.Model.Tests;

/// <summary>A QP the raw driver created, with its rings and CQ (one CQ for both queues).</summary>
internal sealed class RawQp(RawNic nic, uint qpn, uint pd, RawCq cq, DmaCoherentBuffer sq, DmaCoherentBuffer rq, uint entries)
{
    public RawNic Nic { get; } = nic;

    public uint Qpn { get; } = qpn;

    public uint Pd { get; } = pd;

    public RawCq Cq { get; } = cq;

    public DmaCoherentBuffer Sq { get; } = sq;

    public DmaCoherentBuffer Rq { get; } = rq;

    public uint Entries { get; } = entries;

    public uint SqProducer { get; set; }

    public uint RqProducer { get; set; }
}

/// <summary>A CQ ring and the raw driver's consumer index.</summary>
internal sealed class RawCq(uint cqn, DmaCoherentBuffer ring, uint entries)
{
    public uint Cqn { get; } = cqn;

    public DmaCoherentBuffer Ring { get; } = ring;

    public uint Entries { get; } = entries;

    public uint Consumer { get; set; }
}

/// <summary>A registered MR over a coherent buffer, with its MTT.</summary>
internal sealed class RawMr(uint key, ulong iova, DmaCoherentBuffer data, DmaCoherentBuffer mtt, ulong length)
{
    public uint Key { get; } = key;

    public ulong Iova { get; } = iova;

    public DmaCoherentBuffer Data { get; } = data;

    public DmaCoherentBuffer Mtt { get; } = mtt;

    public ulong Length { get; } = length;

    public Span<byte> Bytes => Data.Span[..(int)Length];
}

/// <summary>
/// The raw test driver of one NIC: a command ring with synchronous commands, an event queue, and helpers for PDs, MRs
/// (pinned: MTT filled; ODP: MTT left to the device), CQs, QPs, WQE posting and CQE polling. Context 0 for everything.
/// </summary>
internal sealed class RawNic(RnicTestMachine machine, PciDev dev)
{
    public const uint CommandEntries = 32;
    public const uint EventEntries = 256;
    public const ulong Page = 4096;

    private readonly long[] _vectors = new long[Vectors];
    private uint _cmdProducer;
    private uint _token;
    private uint _eqConsumer;

    public PciDev Dev { get; } = dev;

    public PciBar Bar0 { get; private set; } = null!;

    public PciBar Bar2 { get; private set; } = null!;

    public DmaCoherentBuffer Commands { get; private set; } = null!;

    public DmaCoherentBuffer Responses { get; private set; } = null!;

    public DmaCoherentBuffer Events { get; private set; } = null!;

    public DmaCoherentBuffer Scratch { get; private set; } = null!;

    public long VectorCount(int vector) => Interlocked.Read(ref _vectors[vector]);

    public Errno Probe()
    {
        Bar0 = Dev.Bar(0) ?? throw new InvalidOperationException("NIC without BAR0");
        Bar2 = Dev.Bar(2) ?? throw new InvalidOperationException("NIC without BAR2");
        Commands = Alloc(CommandEntries * RnicCommand.Size);
        Responses = Alloc(CommandEntries * RnicCommandCompletion.Size);
        Events = Alloc(EventEntries * RnicEqe.Size);
        Scratch = Alloc(Page);
        for (int v = 0; v < Vectors; v++)
        {
            int vector = v;
            var err = Dev.RequestIrq(v, _ => { Interlocked.Increment(ref _vectors[vector]); return IrqReturn.Handled; }, $"rnic-test-{v}");
            if (err != Errno.Ok)
                return err;
            Bar0.Write32(MsixVectorControl(v), 0);
        }
        Bar0.Write64(CmdqBase, Commands.BusAddress);
        Bar0.Write64(CmdqRespBase, Responses.BusAddress);
        Bar0.Write32(CmdqSize, CommandEntries);
        Bar0.Write64(EqBase, Events.BusAddress);
        Bar0.Write32(EqSize, EventEntries);
        Bar0.Write32(Control, ControlEnable);
        return Errno.Ok;
    }

    public DmaCoherentBuffer Alloc(ulong bytes)
    {
        var err = Dev.AllocCoherent(Math.Max(bytes, Page), out var b);
        if (err != Errno.Ok)
            throw new InvalidOperationException($"coherent alloc of {bytes}: {err}");
        b!.Span.Clear();
        return b;
    }

    // ---- commands

    /// <summary>Submits <paramref name="command"/> (its token replaced) and waits for its completion.</summary>
    public RnicCommandCompletion Execute(RnicCommand command)
    {
        uint slot = _cmdProducer % CommandEntries;
        (command with { Token = ++_token }).Write(Commands.Span.Slice((int)(slot * RnicCommand.Size), RnicCommand.Size));
        uint target = (_cmdProducer + 1) % (2 * CommandEntries);
        _cmdProducer = target;
        Bar0.Write32(CmdqTail, target);
        machine.WaitFor(() => Bar0.Read32(CmdqHead) == target, $"command {command.Opcode}");
        return RnicCommandCompletion.Read(Responses.Span.Slice((int)(slot * RnicCommandCompletion.Size), RnicCommandCompletion.Size));
    }

    public RnicCommandCompletion ExecuteOk(RnicCommand command)
    {
        var done = Execute(command);
        if (!done.IsOk)
            throw new InvalidOperationException($"{command.Opcode} failed: {done.Status} (out0 0x{done.Out0:x}, out1 0x{done.Out1:x})");
        return done;
    }

    public uint AllocPd() => ExecuteOk(RnicCommand.AllocPd(0, 0)).ObjectNumber;

    public RawCq CreateCq(uint entries)
    {
        var ring = Alloc(entries * RnicCqe.Size);
        return new RawCq(ExecuteOk(RnicCommand.CreateCq(0, 0, ring.BusAddress, entries)).ObjectNumber, ring, entries);
    }

    public RawQp CreateQp(uint pd, uint cqEntries, uint entries)
    {
        var cq = CreateCq(cqEntries);
        var sq = Alloc(entries * RnicSendWqe.Size);
        var rq = Alloc(entries * RnicRecvWqe.Size);
        var done = ExecuteOk(RnicCommand.CreateQp(0, pd, 0, cq.Cqn, cq.Cqn, sq.BusAddress, entries, rq.BusAddress, entries));
        return new RawQp(this, done.ObjectNumber, pd, cq, sq, rq, entries);
    }

    public RnicCommandCompletion Modify(uint qpn, RnicQpAttrMask mask, RnicQpAttributes attributes)
    {
        attributes.Write(Scratch.Span[..RnicQpAttributes.Size]);
        return Execute(RnicCommand.ModifyQp(0, qpn, mask, Scratch.BusAddress));
    }

    /// <summary>RESET → INIT → RTR → RTS with the usual attributes.</summary>
    public void BringUp(RawQp qp, uint destQpn, uint destPort, uint sqPsn, uint rqPsn, byte timeout, byte retry, byte rnrRetry,
        byte minRnrTimer, RnicAccessFlags access, RnicMtu mtu)
    {
        const RnicQpAttrMask init = RnicQpAttrMask.State | RnicQpAttrMask.AccessFlags | RnicQpAttrMask.PkeyIndex | RnicQpAttrMask.Port;
        const RnicQpAttrMask rtr = RnicQpAttrMask.State | RnicQpAttrMask.Av | RnicQpAttrMask.PathMtu | RnicQpAttrMask.RqPsn |
            RnicQpAttrMask.MinRnrTimer | RnicQpAttrMask.MaxDestRdAtomic | RnicQpAttrMask.DestQpn;
        const RnicQpAttrMask rts = RnicQpAttrMask.State | RnicQpAttrMask.Timeout | RnicQpAttrMask.RetryCnt | RnicQpAttrMask.RnrRetry |
            RnicQpAttrMask.MaxQpRdAtomic | RnicQpAttrMask.SqPsn;
        var a = new RnicQpAttributes(State: RnicQpState.Init, AccessFlags: access, Port: 1, PathMtu: mtu, Av: destPort,
            RqPsn: rqPsn, SqPsn: sqPsn, MinRnrTimer: minRnrTimer, MaxDestRdAtomic: 16, MaxRdAtomic: 16, DestQpn: destQpn,
            Timeout: timeout, RetryCnt: retry, RnrRetry: rnrRetry);
        Check(Modify(qp.Qpn, init, a));
        Check(Modify(qp.Qpn, rtr, a with { State = RnicQpState.Rtr }));
        Check(Modify(qp.Qpn, rts, a with { State = RnicQpState.Rts }));

        static void Check(RnicCommandCompletion c)
        {
            if (!c.IsOk)
                throw new InvalidOperationException($"MODIFY_QP failed: {c.Status} 0x{c.Out0:x} 0x{c.Out1:x}");
        }
    }

    public RnicQpState QueryState(uint qpn) => (RnicQpState)ExecuteOk(RnicCommand.QueryQp(0, qpn, Scratch.BusAddress)).Info;

    /// <summary>
    /// Registers <paramref name="bytes"/> of fresh coherent memory (page aligned, iova = <paramref name="iova"/>). A
    /// pinned MR gets a full MTT; an ODP MR's MTT is left for the device to invalidate and the test to fill.
    /// </summary>
    public RawMr RegMr(uint pd, ulong iova, ulong bytes, RnicAccessFlags access, bool onDemand = false, bool writable = true)
    {
        var data = Alloc(bytes);
        ulong entries = RnicMttEntry.PagesSpanned(iova, bytes);
        var mtt = Alloc(entries * RnicMttEntry.Size);
        if (!onDemand)
            FillMtt(mtt, data, 0, entries, writable);
        var done = ExecuteOk(RnicCommand.RegMr(0, pd, iova, bytes, access | (onDemand ? RnicAccessFlags.OnDemand : 0),
            mtt.BusAddress, entries, onDemand));
        return new RawMr(done.Key, iova, data, mtt, bytes);
    }

    /// <summary>Writes MTT entries [first, first+count) valid, pointing at the MR's own pages.</summary>
    public static void FillMtt(DmaCoherentBuffer mtt, DmaCoherentBuffer data, ulong first, ulong count, bool writable = true)
    {
        for (ulong i = first; i < first + count; i++)
        {
            RnicMttEntry.Create(data.BusAddress + (i * Page), writable)
                .Write(mtt.Span.Slice((int)(i * RnicMttEntry.Size), RnicMttEntry.Size));
        }
    }

    public static void FillMtt(RawMr mr, ulong first, ulong count, bool writable = true) => FillMtt(mr.Mtt, mr.Data, first, count, writable);

    // ---- work requests

    public static void PostSend(RawQp qp, RnicSendWqe wqe, bool ring = true)
    {
        uint slot = qp.SqProducer % qp.Entries;
        wqe.Write(qp.Sq.Span.Slice((int)(slot * RnicSendWqe.Size), RnicSendWqe.Size));
        qp.SqProducer = (qp.SqProducer + 1) % (2 * qp.Entries);
        if (ring)
            RingSq(qp);
    }

    public static void RingSq(RawQp qp) => qp.Nic.Bar2.Write64(RnicDoorbells.SqDoorbell, RnicDoorbells.Encode(qp.Qpn, qp.SqProducer));

    public static void PostRecv(RawQp qp, RnicRecvWqe wqe)
    {
        uint slot = qp.RqProducer % qp.Entries;
        wqe.Write(qp.Rq.Span.Slice((int)(slot * RnicRecvWqe.Size), RnicRecvWqe.Size));
        qp.RqProducer = (qp.RqProducer + 1) % (2 * qp.Entries);
        qp.Nic.Bar2.Write64(RnicDoorbells.RqDoorbell, RnicDoorbells.Encode(qp.Qpn, qp.RqProducer));
    }

    /// <summary>Returns the next CQE if one is there (and reports the consumer to the device).</summary>
    public static RnicCqe? Poll(RawQp qp) => Poll(qp.Nic, qp.Cq);

    public static RnicCqe? Poll(RawNic nic, RawCq cq)
    {
        var slot = cq.Ring.Span.Slice((int)((cq.Consumer % cq.Entries) * RnicCqe.Size), RnicCqe.Size);
        if (!RnicCqe.HasPhase(slot, RnicCqe.PhaseFor(cq.Consumer, cq.Entries)))
            return null;
        var cqe = RnicCqe.Read(slot);
        cq.Consumer = (cq.Consumer + 1) % (2 * cq.Entries);
        nic.Bar2.Write64(RnicDoorbells.CqConsumerDoorbell, RnicDoorbells.Encode(cq.Cqn, cq.Consumer));
        return cqe;
    }

    /// <summary>Waits for the next CQE of <paramref name="qp"/>'s CQ.</summary>
    public RnicCqe WaitCqe(RawQp qp)
    {
        RnicCqe? cqe = null;
        machine.WaitFor(() => (cqe = Poll(qp)) is not null, $"a CQE on QP {qp.Qpn}");
        return cqe!.Value;
    }

    // ---- events

    public uint EqPut => Bar0.Read32(RnicRegisters.EqPut);

    /// <summary>Reads every new event and consumes it.</summary>
    public List<RnicEqe> DrainEvents()
    {
        var list = new List<RnicEqe>();
        uint put = EqPut;
        while (_eqConsumer != put)
        {
            list.Add(RnicEqe.Read(Events.Span.Slice((int)((_eqConsumer % EventEntries) * RnicEqe.Size), RnicEqe.Size)));
            _eqConsumer = (_eqConsumer + 1) % (2 * EventEntries);
        }
        Bar0.Write32(RnicRegisters.EqGet, _eqConsumer);
        return list;
    }

    /// <summary>Waits for an event of <paramref name="type"/> and returns it (others read on the way are dropped).</summary>
    public RnicEqe WaitEvent(RnicEventType type)
    {
        RnicEqe? found = null;
        machine.WaitFor(() =>
        {
            foreach (var e in DrainEvents())
            {
                if (e.Type == type && found is null)
                    found = e;
            }
            return found is not null;
        }, $"a {type} event");
        return found!.Value;
    }

    public static ulong ReadU64(RawMr mr, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(mr.Bytes[offset..]);
}
