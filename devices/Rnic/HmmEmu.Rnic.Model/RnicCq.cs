using HmmEmu.Hardware.Memory;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// A completion queue: a ring of 32-byte CQEs in host memory with phase bits, a producer the device owns, a consumer
/// the driver reports through CQ_CI_DB, and a one-shot arm. Every member takes the CQ's own lock, which is the
/// innermost lock of the model (a QP's lock may be held when a CQE is written, never the other way round).
/// </summary>
internal sealed class RnicCq(uint number, uint context, ulong ringAddress, uint entries)
{
    private readonly Lock _lock = new();
    private uint _producer;
    private uint _consumer;
    private bool _armed;
    private bool _armSolicited;
    private bool _error;

    public uint Number { get; } = number;

    public uint Context { get; } = context;

    public ulong RingAddress { get; } = ringAddress;

    public uint Entries { get; } = entries;

    /// <summary>QPs that name this CQ; under the model's object lock.</summary>
    public int References { get; set; }

    public bool HasError
    {
        get { lock (_lock) return _error; }
    }

    /// <summary>QUERY_CQ: info bits and producer.</summary>
    public (ushort Info, uint Producer) Query()
    {
        lock (_lock)
        {
            ushort info = (ushort)((_error ? RnicCommandCompletion.CqInfoError : 0) |
                (_armed ? RnicCommandCompletion.CqInfoArmed : 0) |
                (_armed && _armSolicited ? RnicCommandCompletion.CqInfoArmedSolicited : 0));
            return (info, _producer);
        }
    }

    /// <summary>
    /// Writes <paramref name="cqe"/> at the producer. Returns Written; Overrun when the CQ is full or already stopped
    /// (the completion is lost and the caller moves its QP to ERR; the first overrun raises CqErr); or WriteFailed when
    /// the ring memory is gone. <paramref name="fireArm"/> is set when the CQE spent the arm (raise a Completion event).
    /// </summary>
    public CqWrite Write(IMemoryPort memory, RnicCqe cqe, out bool fireArm, out bool firstOverrun)
    {
        fireArm = false;
        firstOverrun = false;
        lock (_lock)
        {
            if (_error)
                return CqWrite.Overrun;
            uint mask = (2 * Entries) - 1;
            if (((_producer - _consumer) & mask) == Entries)
            {
                _error = true;
                firstOverrun = true;
                return CqWrite.Overrun;
            }
            ulong address = RingAddress + ((_producer & (Entries - 1)) * (ulong)RnicCqe.Size);
            if (!memory.TryGetSpan(address, RnicCqe.Size, write: true, out var span))
            {
                _error = true;
                return CqWrite.WriteFailed;
            }
            (cqe with { Phase = RnicCqe.PhaseFor(_producer, Entries) }).Write(span[..RnicCqe.Size]);
            _producer = (_producer + 1) & mask;
            if (_armed && (!_armSolicited || Fires(cqe)))
            {
                _armed = false;
                fireArm = true;
            }
            return CqWrite.Written;
        }
    }

    /// <summary>CQ_CI_DB: the driver consumed up to <paramref name="consumer"/>. False for an invalid advance.</summary>
    public bool SetConsumer(uint consumer)
    {
        lock (_lock)
        {
            uint mask = (2 * Entries) - 1;
            if (consumer > mask || ((consumer - _consumer) & mask) > ((_producer - _consumer) & mask))
                return false;
            _consumer = consumer;
            return true;
        }
    }

    /// <summary>
    /// CQ_ARM_DB relative to <paramref name="consumer"/>. Returns false for an index outside [consumer, producer].
    /// <paramref name="fireNow"/> is set when a CQE that fires the arm already lies between that index and the
    /// producer (the arm is then spent at once).
    /// </summary>
    public bool Arm(IMemoryPort memory, uint consumer, bool solicitedOnly, out bool fireNow)
    {
        fireNow = false;
        lock (_lock)
        {
            uint mask = (2 * Entries) - 1;
            if (consumer > mask || ((consumer - _consumer) & mask) > ((_producer - _consumer) & mask))
                return false;
            for (uint i = consumer; i != _producer; i = (i + 1) & mask)
            {
                ulong address = RingAddress + ((i & (Entries - 1)) * (ulong)RnicCqe.Size);
                if (!memory.TryGetSpan(address, RnicCqe.Size, write: false, out var span))
                    continue;
                if (!solicitedOnly || Fires(RnicCqe.Read(span[..RnicCqe.Size])))
                {
                    fireNow = true;
                    return true;
                }
            }
            _armed = true;
            _armSolicited = solicitedOnly;
            return true;
        }
    }

    // A solicited-only arm fires on a receive completion with the solicited bit, or on any error completion.
    private static bool Fires(RnicCqe cqe) =>
        cqe.Status != RnicWcStatus.Success || (cqe.Flags & RnicWcFlags.Solicited) != 0;
}

/// <summary>What became of a CQE.</summary>
internal enum CqWrite
{
    Written,
    Overrun,
    WriteFailed,
}
