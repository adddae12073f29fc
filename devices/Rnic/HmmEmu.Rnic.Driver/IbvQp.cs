using HmmEmu.Kernel.Bus;

namespace HmmEmu.Rnic.Driver;

/// <summary>
/// A reliable-connected queue pair (ibv_qp): SQ and RQ rings in memory the process and the device share. Posting
/// writes a WQE and rings the QP's doorbell in the context's doorbell page, without a system call.
/// </summary>
public sealed class IbvQp
{
    internal IbvQp(IbvContext context, IbvPd pd, uint qpNum, IbvCq sendCq, IbvCq recvCq, DmaCoherentBuffer sq, uint sqEntries,
        DmaCoherentBuffer rq, uint rqEntries)
    {
        Context = context;
        Pd = pd;
        QpNum = qpNum;
        SendCq = sendCq;
        RecvCq = recvCq;
        Sq = sq;
        SqEntries = sqEntries;
        Rq = rq;
        RqEntries = rqEntries;
    }

    /// <summary>The context that created it.</summary>
    public IbvContext Context { get; }

    /// <summary>Its PD.</summary>
    public IbvPd Pd { get; }

    /// <summary>The QP number (a peer puts it in its DestQpn).</summary>
    public uint QpNum { get; }

    /// <summary>The CQ of send completions.</summary>
    public IbvCq SendCq { get; }

    /// <summary>The CQ of receive completions.</summary>
    public IbvCq RecvCq { get; }

    /// <summary>Send WQEs the SQ holds.</summary>
    public uint SqEntries { get; }

    /// <summary>Receive WQEs the RQ holds.</summary>
    public uint RqEntries { get; }

    /// <summary>
    /// The state the last successful <see cref="IbvContext.ModifyQp"/> set (the device may since have moved the QP to
    /// ERR by itself; <see cref="IbvContext.QueryQp"/> tells).
    /// </summary>
    public RnicQpState State { get; internal set; } = RnicQpState.Reset;

    internal DmaCoherentBuffer Sq { get; }

    internal DmaCoherentBuffer Rq { get; }

    internal Lock PostLock { get; } = new();

    internal uint SqProducer { get; set; }

    /// <summary>Send WQEs before this index are known to be retired (learnt from polled send completions).</summary>
    internal uint SqFree { get; set; }

    internal uint RqProducer { get; set; }

    internal uint RqFree { get; set; }

    internal bool IsDestroyed { get; set; }
}
