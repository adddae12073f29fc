using HmmEmu.Hardware.Registers;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Interrupts;

/// <summary>
/// An MSI-X-like interrupt vector table (no address/data): per-vector mask and pending bits and a function-wide
/// mask. Raising an unmasked vector sends a message to the bus's <see cref="IInterruptSink"/>; raising a masked
/// vector (or any vector while the function is masked) sets its pending bit instead, and unmasking sends the
/// pending message exactly once (QEMU <c>msix_notify</c> / <c>msix_handle_mask_update</c>). The state can also be
/// placed in a BAR as registers with <see cref="MapRegisters"/>.
/// </summary>
/// <remarks>
/// Thread-safe: the device raises from its worker threads while the driver masks and unmasks through MMIO. State
/// changes happen under one lock; messages are sent after it is released, so the sink never runs under it.
/// </remarks>
public sealed class MsixTable
{
    /// <summary>Bit 0 of the control register: function mask.</summary>
    public const uint ControlFunctionMask = 1u << 0;

    /// <summary>Bit 0 of a vector-control register: vector mask.</summary>
    public const uint VectorControlMask = 1u << 0;

    /// <summary>Position of the table-size field (vector count minus one, 11 bits) in the control register.</summary>
    public const int ControlTableSizeShift = 16;

    private static readonly TraceEventType s_pendEvent = new("msix", "pend", "vector");
    private static readonly TraceEventType s_replayEvent = new("msix", "replay", "vector");

    private readonly Lock _lock = new();
    private readonly ulong[] _masked;    // under _lock: bit per vector
    private readonly ulong[] _pending;   // under _lock: bit per vector
    private readonly bool _maskedAtReset;
    private readonly Trace? _trace;
    private IInterruptSink? _sink;
    private bool _functionMasked;        // under _lock
    private long _raised;
    private long _sent;
    private long _pended;
    private long _replayed;
    private long _dropped;

    /// <summary>
    /// Creates a table of <paramref name="vectorCount"/> vectors (1..2048). With <paramref name="maskedAtReset"/> the
    /// vectors start masked, as on real MSI-X, and the driver must unmask each one it uses; by default they start
    /// unmasked.
    /// </summary>
    public MsixTable(int vectorCount, bool maskedAtReset = false, Trace? trace = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vectorCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vectorCount, 2048);
        VectorCount = vectorCount;
        _maskedAtReset = maskedAtReset;
        _trace = trace;
        _masked = new ulong[(vectorCount + 63) / 64];
        _pending = new ulong[_masked.Length];
        Reset();
    }

    /// <summary>Number of vectors.</summary>
    public int VectorCount { get; }

    /// <summary>Raise calls so far.</summary>
    public long Raised => Interlocked.Read(ref _raised);

    /// <summary>Messages sent to the sink (direct and replayed).</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Raises that found the vector masked and set (or re-set) its pending bit.</summary>
    public long Pended => Interlocked.Read(ref _pended);

    /// <summary>Pending messages sent on unmask.</summary>
    public long Replayed => Interlocked.Read(ref _replayed);

    /// <summary>Messages that could not be sent because no sink is connected.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Whether the whole function is masked.</summary>
    public bool FunctionMasked
    {
        get { lock (_lock) return _functionMasked; }
    }

    /// <summary>Connects the table to the bus (call from <see cref="IPciDevice.Attach"/>).</summary>
    public void Connect(IInterruptSink sink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        Volatile.Write(ref _sink, sink);
    }

    /// <summary>Device side: signals <paramref name="vector"/>. Sends now, or sets its pending bit if masked. Never blocks.</summary>
    public void Raise(int vector)
    {
        CheckVector(vector);
        Interlocked.Increment(ref _raised);
        int w = vector >> 6;
        ulong bit = 1UL << (vector & 63);
        lock (_lock)
        {
            if (_functionMasked || (_masked[w] & bit) != 0)
            {
                _pending[w] |= bit;
                _pended++;
                _trace?.Record(s_pendEvent, (ulong)vector);
                return;
            }
        }
        Send(vector);
    }

    /// <summary>Whether <paramref name="vector"/> is masked.</summary>
    public bool IsMasked(int vector)
    {
        CheckVector(vector);
        lock (_lock)
            return (_masked[vector >> 6] & (1UL << (vector & 63))) != 0;
    }

    /// <summary>Whether <paramref name="vector"/> has a message pending.</summary>
    public bool IsPending(int vector)
    {
        CheckVector(vector);
        lock (_lock)
            return (_pending[vector >> 6] & (1UL << (vector & 63))) != 0;
    }

    /// <summary>Masks or unmasks <paramref name="vector"/>; unmasking sends its pending message, once.</summary>
    public void SetMasked(int vector, bool masked)
    {
        CheckVector(vector);
        int w = vector >> 6;
        ulong bit = 1UL << (vector & 63);
        bool replay;
        lock (_lock)
        {
            if (masked)
            {
                _masked[w] |= bit;
                return;
            }
            _masked[w] &= ~bit;
            replay = !_functionMasked && (_pending[w] & bit) != 0;
            if (replay)
                _pending[w] &= ~bit;
        }
        if (replay)
            Replay(vector);
    }

    /// <summary>Masks or unmasks the whole function; unmasking sends every pending message of an unmasked vector, once, in vector order.</summary>
    public void SetFunctionMasked(bool masked)
    {
        lock (_lock)
        {
            _functionMasked = masked;
            if (masked)
                return;
        }
        for (int w = 0; w < _pending.Length; w++)
        {
            ulong bits;
            lock (_lock)
            {
                if (_functionMasked)
                    return; // masked again meanwhile: the rest stays pending
                bits = _pending[w] & ~_masked[w];
                _pending[w] &= ~bits;
            }
            while (bits != 0)
            {
                int b = System.Numerics.BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                Replay((w << 6) + b);
            }
        }
    }

    /// <summary>The pending bits of vectors 64·<paramref name="word"/> .. 64·<paramref name="word"/>+63 (a PBA entry).</summary>
    public ulong PendingWord(int word)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(word);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(word, _pending.Length);
        lock (_lock)
            return _pending[word];
    }

    /// <summary>Returns to the reset state: no pending messages, function unmasked, vectors masked only if so configured.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _functionMasked = false;
            Array.Clear(_pending);
            for (int w = 0; w < _masked.Length; w++)
            {
                int inWord = Math.Min(64, VectorCount - (w * 64));
                _masked[w] = _maskedAtReset ? (inWord == 64 ? ~0UL : (1UL << inWord) - 1) : 0;
            }
        }
    }

    /// <summary>
    /// Places the table in <paramref name="file"/> as registers, and makes <see cref="RegisterFile.Reset"/> reset it:
    /// <list type="bullet">
    /// <item><c>{prefix}_CTRL</c> (32-bit at <paramref name="controlOffset"/>): bit 0 function mask (RW); bits 26:16 table size − 1 (RO).</item>
    /// <item><c>{prefix}_VEC{n}</c> (32-bit at <paramref name="tableOffset"/> + 4·n): bit 0 vector mask (RW).</item>
    /// <item><c>{prefix}_PBA{i}</c> (64-bit at <paramref name="pbaOffset"/> + 8·i): pending bits of vectors 64·i.. (RO).</item>
    /// </list>
    /// The table's state stays authoritative: reads are computed from it and writes update it.
    /// </summary>
    public void MapRegisters(RegisterFile file, ulong controlOffset, ulong tableOffset, ulong pbaOffset, string prefix = "MSIX")
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        uint sizeField = (uint)(VectorCount - 1) << ControlTableSizeShift;
        file.Define(new RegisterDefinition
        {
            Offset = controlOffset,
            Name = prefix + "_CTRL",
            Description = $"Interrupt table control: function mask, table size ({VectorCount} vectors).",
            Reset = sizeField,
            Fields =
            [
                new RegisterField("TABLE_SIZE", ControlTableSizeShift, 11, FieldMode.ReadOnly),
                new RegisterField("FUNCTION_MASK", 0, 1, FieldMode.ReadWrite),
            ],
            OnWrite = (written, _) => SetFunctionMasked((written & ControlFunctionMask) != 0),
            OnRead = _ => sizeField | (FunctionMasked ? ControlFunctionMask : 0),
        });
        for (int v = 0; v < VectorCount; v++)
        {
            int vector = v;
            file.Define(new RegisterDefinition
            {
                Offset = tableOffset + (4UL * (ulong)v),
                Name = $"{prefix}_VEC{v}",
                Description = $"Vector {v} control: mask.",
                Reset = _maskedAtReset ? VectorControlMask : 0,
                Fields = [new RegisterField("MASK", 0, 1, FieldMode.ReadWrite)],
                OnWrite = (written, _) => SetMasked(vector, (written & VectorControlMask) != 0),
                OnRead = _ => IsMasked(vector) ? VectorControlMask : 0,
            });
        }
        for (int i = 0; i < _pending.Length; i++)
        {
            int word = i;
            file.Define(new RegisterDefinition
            {
                Offset = pbaOffset + (8UL * (ulong)i),
                Name = $"{prefix}_PBA{i}",
                Description = $"Pending bits of vectors {i * 64}..{Math.Min(VectorCount, (i + 1) * 64) - 1}.",
                Width = RegisterWidth.Bits64,
                OnRead = _ => PendingWord(word),
            });
        }
        file.AddResetHook(Reset);
    }

    private void Replay(int vector)
    {
        Interlocked.Increment(ref _replayed);
        _trace?.Record(s_replayEvent, (ulong)vector);
        Send(vector);
    }

    private void Send(int vector)
    {
        if (Volatile.Read(ref _sink) is { } sink)
        {
            Interlocked.Increment(ref _sent);
            sink.Raise(vector);
        }
        else
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    private void CheckVector(int vector)
    {
        if ((uint)vector >= (uint)VectorCount)
        {
            throw new ArgumentOutOfRangeException(nameof(vector), vector,
                $"This interrupt table has {VectorCount} vector(s); vector {vector} does not exist. The device model must raise only its declared vectors.");
        }
    }
}
