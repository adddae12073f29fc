namespace HmmEmu.Hardware.Registers;

/// <summary>
/// One declared register of a <see cref="RegisterFile"/>: its declaration, and the device-side accessors that bypass
/// the driver-side masks (the model sets status bits, raises W1C bits, publishes indices). All accessors are atomic
/// with respect to driver accesses and to each other, and never allocate.
/// </summary>
public sealed class Register
{
    // The stored value. Written only with Interlocked/Volatile so that a device thread and a driver thread can touch
    // the same register concurrently.
    internal ulong _value;

    internal Register(RegisterFile file, RegisterDefinition d, ulong readWrite, ulong writeOneToClear, ulong writeOnly)
    {
        File = file;
        Offset = d.Offset;
        Name = d.Name;
        Description = d.Description;
        Width = d.Width;
        ResetValue = d.Reset;
        ReadWriteMask = readWrite;
        WriteOneToClearMask = writeOneToClear;
        WriteOnlyMask = writeOnly;
        Fields = [.. d.Fields];
        OnWrite = d.OnWrite;
        OnRead = d.OnRead;
        WidthMask = d.Width == RegisterWidth.Bits64 ? ~0UL : 0xFFFF_FFFFUL;
        WriteMask = readWrite | writeOnly;
        _value = d.Reset;
    }

    /// <summary>The file the register belongs to.</summary>
    public RegisterFile File { get; }

    /// <summary>Byte offset in the file.</summary>
    public ulong Offset { get; }

    /// <summary>The register's name.</summary>
    public string Name { get; }

    /// <summary>One-sentence description.</summary>
    public string Description { get; }

    /// <summary>32 or 64 bits.</summary>
    public RegisterWidth Width { get; }

    /// <summary>Size in bytes.</summary>
    public int SizeBytes => (int)Width;

    /// <summary>Value after reset.</summary>
    public ulong ResetValue { get; }

    /// <summary>Read-write bits.</summary>
    public ulong ReadWriteMask { get; }

    /// <summary>Write-1-to-clear bits.</summary>
    public ulong WriteOneToClearMask { get; }

    /// <summary>Write-only bits (read as 0).</summary>
    public ulong WriteOnlyMask { get; }

    /// <summary>Read-only bits: every bit of the register in none of the other masks.</summary>
    public ulong ReadOnlyMask => WidthMask & ~(ReadWriteMask | WriteOneToClearMask | WriteOnlyMask);

    /// <summary>Declared fields (empty if the register was declared by masks).</summary>
    public IReadOnlyList<RegisterField> Fields { get; }

    /// <summary>Whether a driver write invokes a handler.</summary>
    public bool IsDoorbell => OnWrite is not null;

    /// <summary>Whether a driver read is computed by the model.</summary>
    public bool HasReadHook => OnRead is not null;

    /// <summary>The stored value as the device sees it (write-only bits included, read hook not applied).</summary>
    public ulong Value => Volatile.Read(ref _value);

    internal RegisterWriteHandler? OnWrite { get; }

    internal RegisterReadHook? OnRead { get; }

    internal ulong WidthMask { get; }

    internal ulong WriteMask { get; }

    /// <summary>Device side: stores <paramref name="value"/>, ignoring the driver-side masks.</summary>
    public void Set(ulong value) => Volatile.Write(ref _value, value & WidthMask);

    /// <summary>Device side: sets <paramref name="bits"/> (e.g. raises W1C status bits). Returns the previous value.</summary>
    public ulong SetBits(ulong bits) => Interlocked.Or(ref _value, bits & WidthMask);

    /// <summary>Device side: clears <paramref name="bits"/>. Returns the previous value.</summary>
    public ulong ClearBits(ulong bits) => Interlocked.And(ref _value, ~bits);

    /// <summary>Device side: atomically clears <paramref name="clear"/> then sets <paramref name="set"/>. Returns the previous value.</summary>
    public ulong Update(ulong clear, ulong set)
    {
        ulong old, next;
        do
        {
            old = Volatile.Read(ref _value);
            next = ((old & ~clear) | set) & WidthMask;
        }
        while (Interlocked.CompareExchange(ref _value, next, old) != old);
        return old;
    }

    /// <summary>The value a driver read of the whole register would return now (read hook applied, write-only bits zero).</summary>
    public ulong DriverView()
    {
        ulong v = Volatile.Read(ref _value);
        if (OnRead is { } hook)
            v = hook(v) & WidthMask;
        return v & ~WriteOnlyMask;
    }

    internal void ResetValueNow() => Volatile.Write(ref _value, ResetValue);

    /// <inheritdoc />
    public override string ToString() => $"{File.Name}.{Name} @0x{Offset:x} = 0x{Value:x}";
}
