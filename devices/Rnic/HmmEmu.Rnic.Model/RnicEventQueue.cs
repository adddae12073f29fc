using HmmEmu.Hardware.Memory;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// The event queue (EQ_*): 32-byte entries in host memory that the device produces and the driver consumes. An entry
/// is written, then EQ_PUT advances, then the cause is raised. Page-fault and completion events that do not fit wait
/// in a FIFO and are written as EQ_GET makes room, so they are never lost; any other event that does not fit is
/// dropped and counted.
/// </summary>
internal sealed class RnicEventQueue(IMemoryPort memory)
{
    private readonly Lock _lock = new();
    private readonly Queue<RnicEqe> _deferred = new();
    private ulong _base;
    private uint _size;
    private uint _put;
    private uint _get;
    private uint _sequence;
    private uint _overflows;
    private bool _enabled;

    public uint Put
    {
        get { lock (_lock) return _put; }
    }

    public uint Get
    {
        get { lock (_lock) return _get; }
    }

    public uint Overflows
    {
        get { lock (_lock) return _overflows; }
    }

    /// <summary>Events waiting for room (page faults and completion events only).</summary>
    public int Deferred
    {
        get { lock (_lock) return _deferred.Count; }
    }

    /// <summary>Starts the queue at <paramref name="baseAddress"/> with <paramref name="size"/> entries, both indices 0.</summary>
    public bool Configure(ulong baseAddress, uint size)
    {
        lock (_lock)
        {
            _put = _get = 0;
            _deferred.Clear();
            _enabled = false;
            if (size < RnicRegisters.MinQueueEntries || size > RnicRegisters.MaxQueueEntries || (size & (size - 1)) != 0 ||
                (baseAddress & (RnicEqe.Size - 1)) != 0 || !memory.TryGetSpan(baseAddress, RnicEqe.Size, write: true, out _))
            {
                return false;
            }
            _base = baseAddress;
            _size = size;
            _enabled = true;
            return true;
        }
    }

    /// <summary>Forgets everything (reset or disable).</summary>
    public void Disable()
    {
        lock (_lock)
        {
            _enabled = false;
            _put = _get = 0;
            _deferred.Clear();
        }
    }

    /// <summary>Clears the register state on a function-level reset.</summary>
    public void ResetCounters()
    {
        lock (_lock)
        {
            _overflows = 0;
            _sequence = 0;
        }
    }

    /// <summary>
    /// Writes <paramref name="entry"/> (its sequence number is assigned here). Returns Written, Deferred (kept for
    /// later), Dropped (queue full, counted) or Failed (the entry could not be written: the caller reports a WriteBack
    /// error). Never sleeps.
    /// </summary>
    public EventOutcome Post(RnicEqe entry, out ulong failedAddress)
    {
        failedAddress = 0;
        lock (_lock)
        {
            if (!_enabled)
                return EventOutcome.Dropped;
            bool keep = entry.Type is RnicEventType.PageFault or RnicEventType.Completion;
            if (_deferred.Count != 0 || IsFullLocked())
            {
                if (keep)
                {
                    _deferred.Enqueue(entry);
                    return EventOutcome.Deferred;
                }
                _overflows++;
                return EventOutcome.Dropped;
            }
            return WriteLocked(entry, out failedAddress) ? EventOutcome.Written : EventOutcome.Failed;
        }
    }

    /// <summary>
    /// The driver moved EQ_GET to <paramref name="consumer"/>. Returns false for an invalid move (not in
    /// [get, put]); otherwise writes deferred events into the freed room and returns the types written, in order.
    /// </summary>
    public bool Consume(uint consumer, List<RnicEventType> written, out bool writeFailed, out ulong failedAddress)
    {
        writeFailed = false;
        failedAddress = 0;
        lock (_lock)
        {
            if (!_enabled)
                return false;
            uint mask = (2 * _size) - 1;
            if (consumer > mask || ((consumer - _get) & mask) > ((_put - _get) & mask))
                return false;
            _get = consumer;
            while (_deferred.Count != 0 && !IsFullLocked())
            {
                var next = _deferred.Dequeue();
                if (!WriteLocked(next, out failedAddress))
                {
                    writeFailed = true;
                    break;
                }
                written.Add(next.Type);
            }
            return true;
        }
    }

    private bool IsFullLocked() => ((_put - _get) & ((2 * _size) - 1)) == _size;

    private bool WriteLocked(RnicEqe entry, out ulong address)
    {
        address = _base + ((_put & (_size - 1)) * (ulong)RnicEqe.Size);
        if (!memory.TryGetSpan(address, RnicEqe.Size, write: true, out var span))
            return false;
        (entry with { Sequence = ++_sequence }).Write(span[..RnicEqe.Size]);
        _put = (_put + 1) & ((2 * _size) - 1);
        return true;
    }
}

/// <summary>What became of an event.</summary>
internal enum EventOutcome
{
    Written,
    Deferred,
    Dropped,
    Failed,
}
