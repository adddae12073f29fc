using System.Diagnostics;
using System.Runtime.CompilerServices;
using HmmEmu.Hardware.Memory;

namespace HmmEmu.Hardware.Rings;

/// <summary>
/// A power-of-two ring of fixed-size entries in device-visible memory, with a producer and a consumer index.
/// Indices run modulo 2 × <see cref="EntryCount"/>: the extra bit is the wrap bit, so an empty ring
/// (producer == consumer) and a full one (producer == consumer ^ count) differ. Entry <c>i</c> lives at
/// <c>base + (i mod count) × entrySize</c>.
/// </summary>
/// <remarks>
/// Everything the driver can write (base, count, indices) is guest input: a bad value never throws, it stops the
/// ring with a <see cref="RingError"/> in <see cref="Status"/>. Only host-side misuse (a bad entry size at
/// construction, a buffer of the wrong length) throws. All members are thread-safe; none blocks.
/// <para>
/// Every change takes the ring's lock. The reads a driver and a device make once per entry (<see cref="Producer"/>,
/// <see cref="Consumer"/>, <see cref="Pending"/>, and the subclasses' room and work checks) do not: they read the
/// fields one at a time, as a device reads its own registers, so in threaded mode the lock's cache line does not cross
/// between the driver's and the device's processors for them. An index is published with a release write after the
/// entries it covers, so a reader that sees it also sees them. A read that races a reconfiguration or a reset may see
/// values from before and after it; it is a hint, and the locked operation that acts on it checks again.
/// </para>
/// </remarks>
public abstract class DescriptorRing
{
    /// <summary>The largest entry count a ring accepts (indices with wrap bit then fit in 16 bits).</summary>
    public const int MaxEntries = 1 << 15;

    private const int PageSize = 4096;

    private readonly bool _deviceWrites;
    private ulong _base;
    private uint _count;
    private uint _producer;
    private uint _consumer;
    private uint _generation;
    private RingState _state;
    private RingError _error;
    private uint _errorIndex;
    private int _lockOwner;     // the managed thread id holding the ring's lock (EnterLock), 0 when free

    /// <summary>Creates a disabled ring of <paramref name="entrySize"/>-byte entries in <paramref name="port"/>.</summary>
    /// <param name="port">The memory the ring lives in.</param>
    /// <param name="entrySize">Bytes per entry: a power of two from 4 to 4096, so an aligned entry never crosses a page.</param>
    /// <param name="deviceWrites">Whether the device writes the entries (a completion ring) rather than reads them.</param>
    private protected DescriptorRing(IMemoryPort port, int entrySize, bool deviceWrites)
    {
        ArgumentNullException.ThrowIfNull(port);
        if (entrySize < 4 || entrySize > PageSize || (entrySize & (entrySize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(entrySize), entrySize,
                "A ring entry size must be a power of two from 4 to 4096 bytes so that no entry crosses a page; " +
                "pad the entry layout to the next power of two.");
        }
        Port = port;
        EntrySize = entrySize;
        _deviceWrites = deviceWrites;
    }

    /// <summary>The memory the ring lives in.</summary>
    public IMemoryPort Port { get; }

    /// <summary>Bytes per entry.</summary>
    public int EntrySize { get; }

    /// <summary>
    /// Takes the ring's lock, the guard for every index and configuration field; dispose the scope to release it. A
    /// spin lock held for a few loads and stores, never across a wait, and not reentrant. It is a field of the ring
    /// beside the indices, so that in threaded mode a driver's doorbell and the device's fetch move one cache line
    /// between their processors rather than a lock object's line and then the ring's.
    /// </summary>
    private protected LockScope EnterLock()
    {
        int me = Environment.CurrentManagedThreadId;
        if (Interlocked.CompareExchange(ref _lockOwner, me, 0) != 0)
            EnterLockContended(me);
        return new LockScope(this);
    }

    /// <summary>Whether the calling thread holds the ring's lock (for assertions).</summary>
    private protected bool IsLockHeld => Volatile.Read(ref _lockOwner) == Environment.CurrentManagedThreadId;

    private void EnterLockContended(int me)
    {
        if (Volatile.Read(ref _lockOwner) == me)
            throw new InvalidOperationException(
                "Code running under a ring's lock (such as its RingEntryValidator) called back into the ring, and the " +
                "ring's lock is not reentrant. A validator must look only at the entry it is given.");
        var spinner = default(SpinWait);
        while (Volatile.Read(ref _lockOwner) != 0 || Interlocked.CompareExchange(ref _lockOwner, me, 0) != 0)
            spinner.SpinOnce();
    }

    /// <summary>Releases the ring's lock when disposed (the end of a <c>using</c> block).</summary>
    private protected readonly ref struct LockScope(DescriptorRing ring)
    {
        public void Dispose() => Volatile.Write(ref ring._lockOwner, 0);
    }

    /// <summary>The configured base address (0 while disabled).</summary>
    public ulong BaseAddress
    {
        get { using (EnterLock()) return _base; }
    }

    /// <summary>The configured number of entries (0 while disabled).</summary>
    public int EntryCount
    {
        get { using (EnterLock()) return (int)_count; }
    }

    /// <summary>The producer index, with wrap bit.</summary>
    public uint Producer => Volatile.Read(ref _producer);

    /// <summary>The consumer index, with wrap bit.</summary>
    public uint Consumer => Volatile.Read(ref _consumer);

    /// <summary>Entries produced and not yet consumed.</summary>
    public int Pending => (int)PendingUnlocked();

    /// <summary>The ring's state, error and offending index.</summary>
    public RingStatus Status
    {
        get { using (EnterLock()) return new RingStatus(_state, _error, _errorIndex); }
    }

    /// <summary>
    /// Configures the ring at <paramref name="baseAddress"/> with <paramref name="entryCount"/> entries, both
    /// indices 0, and starts it. Guest input: bad values stop the ring with <see cref="RingError.BadSize"/> or
    /// <see cref="RingError.BadBase"/>; a ring that still has pending entries refuses with
    /// <see cref="RingError.Busy"/> and is left unchanged. Never throws, never sleeps.
    /// </summary>
    public RingError Configure(ulong baseAddress, uint entryCount)
    {
        RingError error = Validate(baseAddress, entryCount);
        using (EnterLock())
        {
            if (_state != RingState.Disabled && PendingLocked() != 0)
                return RingError.Busy;
            _generation++;
            _producer = 0;
            _consumer = 0;
            if (error != RingError.None)
            {
                _base = 0;
                _count = 0;
                StopLocked(error, 0);
                return error;
            }
            _base = baseAddress;
            _count = entryCount;
            _state = RingState.Running;
            _error = RingError.None;
            _errorIndex = 0;
            return RingError.None;
        }
    }

    /// <summary>
    /// Resets the ring: both indices 0, error cleared, running again if it has a valid configuration (else disabled).
    /// Entries still pending are forgotten: callers that owe them a completion must drain them first.
    /// </summary>
    public void Reset()
    {
        using (EnterLock())
        {
            _generation++;
            _producer = 0;
            _consumer = 0;
            _error = RingError.None;
            _errorIndex = 0;
            _state = _count == 0 ? RingState.Disabled : RingState.Running;
        }
    }

    /// <summary>
    /// Clears a stop and keeps both indices, so the driver's view of the ring stays valid: the ring runs again from
    /// where it stopped. Does nothing to a disabled ring.
    /// </summary>
    public void Recover()
    {
        using (EnterLock())
        {
            if (_count == 0)
                return;
            _error = RingError.None;
            _errorIndex = 0;
            _state = RingState.Running;
        }
    }

    /// <summary>
    /// Disables the ring for good (device shutdown): later index writes are ignored. Configuration and indices are
    /// kept, so entries still pending can be drained.
    /// </summary>
    public void Disable()
    {
        using (EnterLock())
        {
            _state = RingState.Disabled;
            _error = RingError.None;
            _errorIndex = 0;
        }
    }

    /// <summary>Checks the index arithmetic; tests call it after every step.</summary>
    public void AssertInvariants()
    {
        using (EnterLock())
        {
            if (_count == 0)
            {
                Require(_producer == 0 && _consumer == 0, "an unconfigured ring has non-zero indices");
                return;
            }
            Require((_count & (_count - 1)) == 0, "count is not a power of two");
            Require(_producer < 2 * _count && _consumer < 2 * _count, "an index is outside [0, 2 × count)");
            Require(PendingLocked() <= _count, "more entries pending than the ring holds");
            Require((_state == RingState.Stopped) == (_error != RingError.None), "stopped and error disagree");
        }

        static void Require(bool ok, string what)
        {
            if (!ok)
                throw new InvalidOperationException("Ring invariant broken: " + what + ".");
        }
    }

    /// <summary>The address of the entry with ring index <paramref name="index"/>. Caller holds the ring's lock (<see cref="EnterLock"/>).</summary>
    private protected ulong EntryAddressLocked(uint index)
    {
        Debug.Assert(IsLockHeld);
        return _base + ((ulong)(index & (_count - 1)) * (ulong)EntrySize);
    }

    /// <summary>Entries between consumer and producer. Caller holds the ring's lock (<see cref="EnterLock"/>).</summary>
    private protected uint PendingLocked() => _count == 0 ? 0 : (_producer - _consumer) & ((2 * _count) - 1);

    /// <summary>Entries between consumer and producer, read without the lock (see the remarks on the class).</summary>
    private protected uint PendingUnlocked()
    {
        uint count = Volatile.Read(ref _count);
        return count == 0 ? 0 : (Volatile.Read(ref _producer) - Volatile.Read(ref _consumer)) & ((2 * count) - 1);
    }

    /// <summary>Entry count (0 while disabled), read without the lock.</summary>
    private protected uint CountUnlocked => Volatile.Read(ref _count);

    /// <summary>Current state, read without the lock.</summary>
    private protected RingState StateUnlocked => (RingState)Volatile.Read(ref Unsafe.As<RingState, byte>(ref _state));

    /// <summary>
    /// Publishes a new producer index (release: after the entries it covers). Caller holds the ring's lock (<see cref="EnterLock"/>).
    /// </summary>
    private protected void PublishProducerLocked(uint value)
    {
        Debug.Assert(IsLockHeld);
        Volatile.Write(ref _producer, value);
    }

    /// <summary>Publishes a new consumer index (release). Caller holds the ring's lock (<see cref="EnterLock"/>).</summary>
    private protected void PublishConsumerLocked(uint value)
    {
        Debug.Assert(IsLockHeld);
        Volatile.Write(ref _consumer, value);
    }

    /// <summary>The index after <paramref name="index"/>. Caller holds the ring's lock (<see cref="EnterLock"/>).</summary>
    private protected uint NextLocked(uint index) => (index + 1) & ((2 * _count) - 1);

    /// <summary>
    /// Whether <paramref name="value"/> is a valid new position for the index that runs ahead (<paramref name="from"/>
    /// is the side it runs ahead of, <paramref name="current"/> its present value, <paramref name="limit"/> how far
    /// ahead it may run): in range, not moving backwards, not past the limit. Caller holds the ring's lock (<see cref="EnterLock"/>).
    /// </summary>
    private protected bool IsValidAdvanceLocked(uint value, uint from, uint current, uint limit)
    {
        uint mask = (2 * _count) - 1;
        if (_count == 0 || value > mask)
            return false;
        uint distance = (value - from) & mask;
        return distance <= limit && distance >= ((current - from) & mask);
    }

    /// <summary>Stops the ring unless it already stopped (the first error is the one reported). Caller holds the ring's lock (<see cref="EnterLock"/>).</summary>
    private protected void StopLocked(RingError error, uint index)
    {
        Debug.Assert(IsLockHeld);
        if (_state == RingState.Stopped)
            return;
        _state = RingState.Stopped;
        _error = error;
        _errorIndex = index;
    }

    /// <summary>Current state. Caller holds the ring's lock (<see cref="EnterLock"/>).</summary>
    private protected RingState StateLocked => _state;

    /// <summary>Entry count (0 while disabled). Caller holds the ring's lock (<see cref="EnterLock"/>).</summary>
    private protected uint CountLocked => _count;

    /// <summary>Configuration generation. Caller holds the ring's lock (<see cref="EnterLock"/>).</summary>
    private protected uint GenerationLocked => _generation;

    /// <summary>The producer index. Caller holds the ring's lock (<see cref="EnterLock"/>).</summary>
    private protected uint ProducerLocked => _producer;

    /// <summary>The consumer index. Caller holds the ring's lock (<see cref="EnterLock"/>).</summary>
    private protected uint ConsumerLocked => _consumer;

    private RingError Validate(ulong baseAddress, uint entryCount)
    {
        if (entryCount == 0 || entryCount > MaxEntries || (entryCount & (entryCount - 1)) != 0)
            return RingError.BadSize;
        ulong bytes = (ulong)entryCount * (ulong)EntrySize;
        ulong align = Math.Min(bytes, PageSize);
        if ((baseAddress & (align - 1)) != 0 || baseAddress > Port.Size || bytes > Port.Size - baseAddress)
            return RingError.BadBase;
        for (ulong a = baseAddress; a < baseAddress + bytes; a += PageSize)
        {
            int want = (int)Math.Min(PageSize, baseAddress + bytes - a);
            if (!Port.TryGetSpan(a, want, _deviceWrites, out var span) || span.Length != want)
                return RingError.BadBase;
        }
        return RingError.None;
    }
}
