using System.Globalization;
using System.Numerics;
using System.Text;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Registers;

/// <summary>
/// A device's registers, declared once, answering MMIO as a BAR (<see cref="IMmio"/>). Driver writes follow the VT-d
/// mask arithmetic: <c>new = ((old &amp; ~wmask) | (val &amp; wmask)) &amp; ~(w1cmask &amp; val)</c>, where wmask is the
/// read-write and write-only bits; write-only bits read as 0. Accesses are 4 or 8 bytes and naturally aligned; a
/// 4-byte access to either half of a 64-bit register is allowed (as on PCI). Anything else, and any offset where
/// no register is declared, is a bus error: reads return all-ones of the access size, writes are dropped, a counter
/// and a trace event record it, and nothing is thrown.
/// </summary>
/// <remarks>
/// Concurrency: a device thread and driver threads may access the file at the same time. Each register's value is
/// updated with a compare-and-swap, so every access is atomic on its register and the hot path takes no lock and
/// allocates nothing. Doorbell handlers and read hooks run on the accessing thread, outside any lock. Declare every
/// register before the file is exposed; <see cref="Define(RegisterDefinition)"/> is safe against concurrent access
/// but a register declared late is simply absent until then.
/// </remarks>
public sealed class RegisterFile : IMmio
{
    private static readonly TraceEventType s_busErrorEvent = new("mmio", "bus_error", "offset", "size", "write");

    private readonly Lock _defineLock = new();
    private readonly Trace? _trace;
    private readonly Action? _onBusError;
    private Register?[] _words = [];            // by offset / 4; replaced whole under _defineLock, read lock-free
    private Register[] _registers = [];         // offset order; replaced whole under _defineLock
    private Action[] _resetHooks = [];          // replaced whole under _defineLock
    private long _busErrors;

    /// <summary>
    /// Creates an empty file spanning <paramref name="size"/> bytes; bus errors are traced to <paramref name="trace"/>
    /// and, after being counted, reported to <paramref name="onBusError"/> (on the accessing thread, outside any lock:
    /// where a device sets its STATUS.BUS_ERROR and raises its error interrupt).
    /// </summary>
    public RegisterFile(string name, ulong size, Trace? trace = null, Action? onBusError = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (size == 0 || size % 8 != 0 || size > (1UL << 32))
            throw new ArgumentOutOfRangeException(nameof(size), size, "A register file spans a non-zero multiple of 8 bytes, at most 4 GiB.");
        Name = name;
        Size = size;
        _trace = trace;
        _onBusError = onBusError;
    }

    /// <summary>The file's name (e.g. "gpu.bar0"), used in documentation and messages.</summary>
    public string Name { get; }

    /// <inheritdoc />
    public ulong Size { get; }

    /// <summary>Bad accesses so far: unknown offsets, bad sizes, misalignment.</summary>
    public long BusErrors => Interlocked.Read(ref _busErrors);

    /// <summary>The declared registers in offset order.</summary>
    public IReadOnlyList<Register> Registers => Volatile.Read(ref _registers);

    /// <summary>Declares a register. Throws if it overlaps another, is misaligned, out of range, or its masks conflict.</summary>
    public Register Define(RegisterDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        var d = definition;
        ArgumentException.ThrowIfNullOrEmpty(d.Name, nameof(definition));
        int bytes = (int)d.Width;
        if (d.Width is not (RegisterWidth.Bits32 or RegisterWidth.Bits64))
            throw new ArgumentException($"Register {d.Name}: width must be Bits32 or Bits64, not {d.Width}.", nameof(definition));
        if (d.Offset % (ulong)bytes != 0 || d.Offset + (ulong)bytes > Size)
        {
            throw new ArgumentException(
                $"Register {d.Name} at 0x{d.Offset:x}: a {bytes * 8}-bit register must be {bytes}-byte aligned and lie inside " +
                $"{Name} (0x{Size:x} bytes). Move it or enlarge the file.", nameof(definition));
        }
        ulong widthMask = d.Width == RegisterWidth.Bits64 ? ~0UL : 0xFFFF_FFFFUL;
        ulong rw = d.ReadWrite, w1c = d.WriteOneToClear, wo = d.WriteOnly;
        if (d.Fields.Count > 0)
        {
            if ((rw | w1c | wo) != 0)
                throw new ArgumentException($"Register {d.Name} declares both masks and fields; declare one or the other.", nameof(definition));
            ulong seen = 0;
            foreach (var f in d.Fields)
            {
                if (f.Width <= 0 || f.Lsb < 0 || f.Lsb + f.Width > bytes * 8)
                    throw new ArgumentException($"Register {d.Name}: field {f.Name}{f.BitRange} does not fit in {bytes * 8} bits.", nameof(definition));
                if ((seen & f.Mask) != 0)
                    throw new ArgumentException($"Register {d.Name}: field {f.Name}{f.BitRange} overlaps another field.", nameof(definition));
                seen |= f.Mask;
                switch (f.Mode)
                {
                    case FieldMode.ReadWrite: rw |= f.Mask; break;
                    case FieldMode.WriteOneToClear: w1c |= f.Mask; break;
                    case FieldMode.WriteOnly: wo |= f.Mask; break;
                    default: break;
                }
            }
        }
        if (((rw | w1c | wo | d.Reset) & ~widthMask) != 0)
            throw new ArgumentException($"Register {d.Name}: reset value or masks have bits above bit {(bytes * 8) - 1}.", nameof(definition));
        if ((rw & w1c) != 0 || (rw & wo) != 0 || (w1c & wo) != 0)
        {
            throw new ArgumentException(
                $"Register {d.Name}: a bit has two modes (RW 0x{rw:x}, W1C 0x{w1c:x}, WO 0x{wo:x}). Give each bit one mode.",
                nameof(definition));
        }

        var reg = new Register(this, d, rw, w1c, wo);
        lock (_defineLock)
        {
            foreach (var other in _registers)
            {
                if (string.Equals(other.Name, d.Name, StringComparison.Ordinal))
                    throw new ArgumentException($"{Name} already has a register named {d.Name} (at 0x{other.Offset:x}).", nameof(definition));
            }
            ulong first = d.Offset >> 2;
            int count = bytes / 4;
            var words = _words;
            for (int i = 0; i < count; i++)
            {
                ulong w = first + (ulong)i;
                if (w < (ulong)words.Length && words[w] is { } taken)
                {
                    throw new ArgumentException(
                        $"Register {d.Name} at 0x{d.Offset:x} overlaps {taken.Name} at 0x{taken.Offset:x} in {Name}.", nameof(definition));
                }
            }
            ulong needed = first + (ulong)count;
            var grown = new Register?[Math.Max((ulong)words.Length, needed)];
            Array.Copy(words, grown, words.Length);
            for (int i = 0; i < count; i++)
                grown[first + (ulong)i] = reg;
            Register[] list = [.. _registers, reg];
            Array.Sort(list, static (a, b) => a.Offset.CompareTo(b.Offset));
            Volatile.Write(ref _registers, list);
            Volatile.Write(ref _words, grown);
        }
        return reg;
    }

    /// <summary>Declares a 32-bit register by masks. See <see cref="Define(RegisterDefinition)"/>.</summary>
    public Register Define32(ulong offset, string name, string description, uint reset = 0, uint readWrite = 0,
        uint writeOneToClear = 0, uint writeOnly = 0, RegisterWriteHandler? onWrite = null, RegisterReadHook? onRead = null) =>
        Define(new RegisterDefinition
        {
            Offset = offset,
            Name = name,
            Description = description,
            Width = RegisterWidth.Bits32,
            Reset = reset,
            ReadWrite = readWrite,
            WriteOneToClear = writeOneToClear,
            WriteOnly = writeOnly,
            OnWrite = onWrite,
            OnRead = onRead,
        });

    /// <summary>Declares a 64-bit register by masks. See <see cref="Define(RegisterDefinition)"/>.</summary>
    public Register Define64(ulong offset, string name, string description, ulong reset = 0, ulong readWrite = 0,
        ulong writeOneToClear = 0, ulong writeOnly = 0, RegisterWriteHandler? onWrite = null, RegisterReadHook? onRead = null) =>
        Define(new RegisterDefinition
        {
            Offset = offset,
            Name = name,
            Description = description,
            Width = RegisterWidth.Bits64,
            Reset = reset,
            ReadWrite = readWrite,
            WriteOneToClear = writeOneToClear,
            WriteOnly = writeOnly,
            OnWrite = onWrite,
            OnRead = onRead,
        });

    /// <summary>The register that starts at <paramref name="offset"/>, or null.</summary>
    public Register? Find(ulong offset)
    {
        var words = Volatile.Read(ref _words);
        ulong w = offset >> 2;
        return w < (ulong)words.Length && words[w] is { } r && r.Offset == offset ? r : null;
    }

    /// <summary>The register named <paramref name="name"/>; throws if there is none.</summary>
    public Register Get(string name)
    {
        foreach (var r in Registers)
        {
            if (string.Equals(r.Name, name, StringComparison.Ordinal))
                return r;
        }
        throw new ArgumentException($"{Name} has no register named '{name}'.", nameof(name));
    }

    /// <summary>Adds an action that <see cref="Reset"/> runs after the registers are back at their reset values (in order added).</summary>
    public void AddResetHook(Action hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        lock (_defineLock)
            Volatile.Write(ref _resetHooks, [.. _resetHooks, hook]);
    }

    /// <summary>
    /// Returns every register to its reset value, then runs the reset hooks. Not atomic as a whole against concurrent
    /// driver writes: quiesce the device first (a function-level reset does).
    /// </summary>
    public void Reset()
    {
        foreach (var r in Registers)
            r.ResetValueNow();
        foreach (var hook in Volatile.Read(ref _resetHooks))
            hook();
    }

    /// <inheritdoc />
    public ulong Read(ulong offset, int size)
    {
        if (!TryResolve(offset, size, out var reg, out int shift))
        {
            RecordBusError(offset, size, write: false);
            return AllOnes(size);
        }
        ulong v = Volatile.Read(ref reg._value);
        if (reg.OnRead is { } hook)
            v = hook(v) & reg.WidthMask;
        v &= ~reg.WriteOnlyMask;
        return size == 8 ? v : (v >> shift) & 0xFFFF_FFFFUL;
    }

    /// <inheritdoc />
    public void Write(ulong offset, int size, ulong value)
    {
        if (!TryResolve(offset, size, out var reg, out int shift))
        {
            RecordBusError(offset, size, write: true);
            return;
        }
        ulong access = size == 8 ? reg.WidthMask : 0xFFFF_FFFFUL << shift;
        ulong written = (size == 8 ? value : (value & 0xFFFF_FFFFUL) << shift) & reg.WidthMask;
        ulong wmask = reg.WriteMask & access;
        ulong clear = reg.WriteOneToClearMask & written;
        ulong old, next;
        do
        {
            old = Volatile.Read(ref reg._value);
            next = ((old & ~wmask) | (written & wmask)) & ~clear;
        }
        while (next != old && Interlocked.CompareExchange(ref reg._value, next, old) != old);
        reg.OnWrite?.Invoke(written, next);
    }

    /// <summary>
    /// The register map as a Markdown table (Offset, Name, Size, Reset, Access, Description), one row per register in
    /// offset order, for <c>docs/</c>.
    /// </summary>
    public string ToMarkdown()
    {
        var regs = Registers;
        int digits = Math.Max(4, ((64 - BitOperations.LeadingZeroCount(Size - 1)) + 3) / 4);
        var sb = new StringBuilder();
        sb.Append("| Offset | Name | Size | Reset | Access | Description |\n");
        sb.Append("| --- | --- | --- | --- | --- | --- |\n");
        foreach (var r in regs)
        {
            string offset = "0x" + r.Offset.ToString("x" + digits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
            string reset = "0x" + r.ResetValue.ToString(r.Width == RegisterWidth.Bits64 ? "x16" : "x8", CultureInfo.InvariantCulture);
            sb.Append("| ").Append(offset)
              .Append(" | ").Append(Escape(r.Name))
              .Append(" | ").Append(r.SizeBytes * 8)
              .Append(" | ").Append(reset)
              .Append(" | ").Append(Escape(DescribeAccess(r)))
              .Append(" | ").Append(Escape(r.Description))
              .Append(" |\n");
        }
        return sb.ToString();
    }

    /// <inheritdoc />
    public override string ToString() => $"RegisterFile {Name} (0x{Size:x} bytes, {Registers.Count} registers)";

    private static ulong AllOnes(int size) => size is > 0 and < 8 ? (1UL << (size * 8)) - 1 : ~0UL;

    private bool TryResolve(ulong offset, int size, out Register reg, out int shift)
    {
        reg = null!;
        shift = 0;
        if ((size != 4 && size != 8) || (offset & (ulong)(size - 1)) != 0)
            return false;
        var words = Volatile.Read(ref _words);
        ulong w = offset >> 2;
        if (w >= (ulong)words.Length || words[w] is not { } r)
            return false;
        if (size == 8 && (r.Width != RegisterWidth.Bits64 || r.Offset != offset))
            return false;
        reg = r;
        shift = (int)(offset - r.Offset) * 8;
        return true;
    }

    private void RecordBusError(ulong offset, int size, bool write)
    {
        Interlocked.Increment(ref _busErrors);
        _trace?.Record(s_busErrorEvent, offset, (ulong)(uint)size, write ? 1UL : 0UL);
        _onBusError?.Invoke();
    }

    private static string DescribeAccess(Register r)
    {
        var parts = new List<string>();
        if (r.Fields.Count > 0)
        {
            foreach (var f in r.Fields.OrderByDescending(f => f.Lsb))
                parts.Add($"{f.Name} {f.BitRange} {ModeName(f.Mode)}");
        }
        else
        {
            int bits = r.SizeBytes * 8;
            int hi = bits - 1;
            while (hi >= 0)
            {
                var mode = ModeOf(r, hi);
                int lo = hi;
                while (lo > 0 && ModeOf(r, lo - 1) == mode)
                    lo--;
                parts.Add(hi == lo ? $"{ModeName(mode)} [{hi}]" : $"{ModeName(mode)} [{hi}:{lo}]");
                hi = lo - 1;
            }
        }
        if (r.IsDoorbell)
            parts.Add("doorbell");
        if (r.HasReadHook)
            parts.Add("computed on read");
        return string.Join(", ", parts);
    }

    private static FieldMode ModeOf(Register r, int bit)
    {
        ulong b = 1UL << bit;
        if ((r.ReadWriteMask & b) != 0)
            return FieldMode.ReadWrite;
        if ((r.WriteOneToClearMask & b) != 0)
            return FieldMode.WriteOneToClear;
        if ((r.WriteOnlyMask & b) != 0)
            return FieldMode.WriteOnly;
        return FieldMode.ReadOnly;
    }

    private static string ModeName(FieldMode mode) => mode switch
    {
        FieldMode.ReadWrite => "RW",
        FieldMode.WriteOneToClear => "W1C",
        FieldMode.WriteOnly => "WO",
        _ => "RO",
    };

    private static string Escape(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
}
